// producer_consumer.cpp: the seed's generator program (生产者-消费者 with
// yield), line for line on greenlet::generator.
//
//   def consumer():
//       r = ''
//       while True:
//           n = yield r
//           if not n:
//               return
//           print('[CONSUMER] Consuming %s...' % n)
//           r = '200 OK'
//
//   def produce(c):
//       c.send(None)
//       n = 0
//       while n < 5:
//           n = n + 1
//           print('[PRODUCER] Producing %s...' % n)
//           r = c.send(n)
//           print('[PRODUCER] Consumer return: %s' % r)
//       c.close()
//
//   c = consumer()
//   produce(c)
#include <cstdio>
#include <optional>
#include <string>

#include <greenlet/generator.hpp>

// consumer yields strings and is sent ints: generator[str, int, None].
using consumer_t = greenlet::generator<std::string, int>;

consumer_t consumer() {
  return consumer_t([](consumer_t::context& co) {
    std::string r = "";
    while (true) {
      std::optional<int> n = co.yield(r);  // nullopt is Python's None
      if (!n || *n == 0) {                 // Python's `not n`
        return;
      }
      std::printf("[CONSUMER] Consuming %d...\n", *n);
      r = "200 OK";
    }
  });
}

void produce(consumer_t& c) {
  c.send(std::nullopt);  // c.send(None) starts it
  int n = 0;
  while (n < 5) {
    n = n + 1;
    std::printf("[PRODUCER] Producing %d...\n", n);
    std::string r = c.send(n);
    std::printf("[PRODUCER] Consumer return: %s\n", r.c_str());
  }
  c.close();  // GeneratorExit at the consumer's yield ends it
}

int main() {
  consumer_t c = consumer();
  produce(c);
}
