// ubsan_options.cpp: the UndefinedBehaviorSanitizer options every test binary
// starts with (the runtime calls __ubsan_default_options() before reading
// UBSAN_OPTIONS, which can still override them), so that a test run from a
// shell reports as one run by ctest: with a stack trace. Without UBSan in the
// build the function is never called.
extern "C" const char* __ubsan_default_options();

extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1"; }
