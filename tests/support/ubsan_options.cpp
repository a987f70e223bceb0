// ubsan_options.cpp: the UndefinedBehaviorSanitizer options every test binary
// starts with (the runtime calls __ubsan_default_options() before reading
// UBSAN_OPTIONS, which can still override them), so that every report comes
// with a stack trace, whether ctest runs the test or a shell does. Without
// UBSan in the build the function is never called.
extern "C" const char* __ubsan_default_options();

extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1"; }
