// greenlet_switch.cpp: the seed's greenlet program (协程 / greenlet实现协程),
// line for line.
//
//   def func1():          def func2():
//       print(1)              print(3)
//       gr2.switch()          gr1.switch()
//       print(2)              print(4)
//       gr2.switch()
//   gr1 = greenlet(func1); gr2 = greenlet(func2); gr1.switch()
#include <cstdio>

#include <greenlet/greenlet.hpp>

greenlet::greenlet gr1, gr2;

void func1() {
  std::puts("1");  // step 2: print 1
  gr2.switch_();   // step 3: switch to func2
  std::puts("2");  // step 6: print 2
  gr2.switch_();   // step 7: switch to func2
}

void func2() {
  std::puts("3");  // step 4: print 3
  gr1.switch_();   // step 5: switch to func1
  std::puts("4");  // step 8: print 4
}

int main() {
  gr1 = greenlet::greenlet(func1);
  gr2 = greenlet::greenlet(func2);
  gr1.switch_();  // step 1: run func1
  // gr1 is still suspended in its second switch_(): at exit it is killed
  // with GreenletExit, so its stack unwinds like any other.
}
