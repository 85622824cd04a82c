#include "helpers.h"
TCase *tcase_train(void) { return nd_test_case("train"); }
