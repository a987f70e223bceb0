// go_channels.go: Go goroutines over channels as a peer (Debian golang-go).
//
// Built by bench/run_all.sh into the bench build directory and run there:
//
//	go build -o BUILD/bench/go_channels bench/peers/go_channels.go
//	BUILD/bench/go_channels --repetitions 5
//
// Everything runs with GOMAXPROCS=1 (one thread runs goroutines, as one
// thread runs our loop). Prints a JSON list in report.py's peer schema
// (the same rows as bench/peers/peer_rows.py: median, spread (max-min)/median
// in percent):
//
//	go_channel_switch    ns per switch: two goroutines ping-pong over two
//	                     unbuffered channels (a round trip is two switches)
//	go_goroutine_create  ns per goroutine created, run and finished: `go f()`
//	                     where f sends on an unbuffered channel, and the
//	                     creator receives (one goroutine at a time)
//	go_sleep0_step       ns per step: 100,000 goroutines each call
//	                     runtime.Gosched() ten times, creation amortized over
//	                     the 11 steps (the loop's 100k x 10 sleep(0) workload)
//	go_gather            ns per goroutine: 1,000 started, each storing its
//	                     index in a results slice, and waited for with a
//	                     WaitGroup (the loop's gather_tasks/1000)
//	go_suspended_memory  resident bytes per goroutine with 100,000 blocked on
//	                     a channel at once (RSS delta / count), each sample in
//	                     a fresh process (a process that ran goroutines keeps
//	                     their stacks for reuse)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

type row struct {
	Name         string   `json:"name"`
	NsPerOp      *float64 `json:"ns_per_op,omitempty"`
	BytesPerTask *float64 `json:"bytes_per_task,omitempty"`
	Spread       float64  `json:"spread"`
	Repetitions  int      `json:"repetitions"`
	Source       string   `json:"source"`
}

// medianSpread returns the median of the samples and (max-min)/median in percent.
func medianSpread(samples []float64) (float64, float64) {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	n := len(s)
	median := s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, 100 * (s[n-1] - s[0]) / median
}

func source() string { return "Go " + runtime.Version() + ", GOMAXPROCS=1" }

func timeRow(name string, samples []float64) row {
	m, spread := medianSpread(samples)
	return row{Name: name, NsPerOp: &m, Spread: spread, Repetitions: len(samples), Source: source()}
}

func memoryRow(name string, samples []float64) row {
	m, spread := medianSpread(samples)
	return row{Name: name, BytesPerTask: &m, Spread: spread, Repetitions: len(samples), Source: source()}
}

func switchNs(rounds int) float64 {
	ping := make(chan struct{})
	pong := make(chan struct{})
	go func() {
		for range ping {
			pong <- struct{}{}
		}
		close(pong)
	}()
	t0 := time.Now()
	for i := 0; i < rounds; i++ {
		ping <- struct{}{}
		<-pong
	}
	elapsed := time.Since(t0)
	close(ping)
	<-pong
	return float64(elapsed.Nanoseconds()) / float64(2*rounds)
}

func createNs(count int) float64 {
	done := make(chan struct{})
	t0 := time.Now()
	for i := 0; i < count; i++ {
		go func() { done <- struct{}{} }()
		<-done
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(count)
}

// gatherNs starts n goroutines that each store their index in a results
// slice and waits for them all (a WaitGroup), rounds times: ns per goroutine.
func gatherNs(n, rounds int) float64 {
	results := make([]int, n)
	t0 := time.Now()
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func(i int) {
				results[i] = i
				wg.Done()
			}(i)
		}
		wg.Wait()
		if results[n-1] != n-1 {
			panic("gather lost a result")
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n*rounds)
}

func sleep0Ns(tasks, yields int) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(tasks)
	for i := 0; i < tasks; i++ {
		go func() {
			for j := 0; j < yields; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(tasks*(yields+1))
}

func residentBytes() int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	var size, resident int64
	if _, err := fmt.Fscan(f, &size, &resident); err != nil {
		panic(err)
	}
	return resident * int64(os.Getpagesize())
}

// memoryOnce blocks n goroutines on one channel and returns the RSS growth per goroutine.
func memoryOnce(n int) float64 {
	runtime.GC()
	gate := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	before := residentBytes()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-gate
			finished.Done()
		}()
	}
	started.Wait()
	after := residentBytes()
	close(gate)
	finished.Wait()
	return float64(after-before) / float64(n)
}

func main() {
	repetitions := flag.Int("repetitions", 5, "samples per row")
	rounds := flag.Int("rounds", 1_000_000, "switch round trips per sample")
	tasks := flag.Int("tasks", 100_000, "goroutines for the yield and memory rows")
	yields := flag.Int("yields", 10, "runtime.Gosched() calls per goroutine")
	memoryChild := flag.Bool("memory-once", false, "print one memory sample and exit (internal)")
	flag.Parse()
	runtime.GOMAXPROCS(1)

	if *memoryChild {
		fmt.Println(memoryOnce(*tasks))
		return
	}
	memory := make([]float64, 0, *repetitions)
	for i := 0; i < *repetitions; i++ {
		out, err := exec.Command(os.Args[0], "--memory-once", "--tasks", strconv.Itoa(*tasks)).Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "go_channels: memory sample:", err)
			os.Exit(1)
		}
		v, err := strconv.ParseFloat(string(out[:len(out)-1]), 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "go_channels: memory sample:", err)
			os.Exit(1)
		}
		memory = append(memory, v)
	}

	switchNs(*rounds / 10) // warm up
	var switches, creates, steps, gathers []float64
	for i := 0; i < *repetitions; i++ {
		switches = append(switches, switchNs(*rounds))
	}
	for i := 0; i < *repetitions; i++ {
		creates = append(creates, createNs(*rounds/4))
	}
	gatherNs(1000, 100) // warm up
	for i := 0; i < *repetitions; i++ {
		gathers = append(gathers, gatherNs(1000, 1000))
	}
	sleep0Ns(*tasks, *yields) // warm up: the first run grows the heap and the goroutine free list
	for i := 0; i < *repetitions; i++ {
		steps = append(steps, sleep0Ns(*tasks, *yields))
	}
	rows := []row{
		timeRow("go_channel_switch", switches),
		timeRow("go_goroutine_create", creates),
		timeRow("go_sleep0_step", steps),
		timeRow("go_gather", gathers),
		memoryRow("go_suspended_memory", memory),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(rows); err != nil {
		fmt.Fprintln(os.Stderr, "go_channels:", err)
		os.Exit(1)
	}
}
