/* The autograd layer's Check suite. */
#include <stdlib.h>

#include "helpers.h"

TCase *tcase_grad_elementwise(void);
TCase *tcase_grad_reduce(void);
TCase *tcase_grad_shape(void);
TCase *tcase_grad_conv(void);
TCase *tcase_tape(void);
TCase *tcase_function(void);
TCase *tcase_function_unclean(void);
TCase *tcase_train(void);

int main(void) {
    Suite *s = suite_create("autograd");
    suite_add_tcase(s, tcase_grad_elementwise());
    suite_add_tcase(s, tcase_grad_reduce());
    suite_add_tcase(s, tcase_grad_shape());
    suite_add_tcase(s, tcase_grad_conv());
    suite_add_tcase(s, tcase_tape());
    suite_add_tcase(s, tcase_function());
    suite_add_tcase(s, tcase_function_unclean());
    suite_add_tcase(s, tcase_train());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
