// libFuzzer target: each input is a file handed to the public loader (tests/fuzz/harness.h).
#include "tests/fuzz/harness.h"

ENCORE_FUZZ_TARGET(safetensors)
