#include "helpers.h"
TCase *tcase_memory(void) { return nd_test_case("memory"); }
