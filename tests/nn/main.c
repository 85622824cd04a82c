/* The nn layer's Check suite. */
#include <stdlib.h>

#include "helpers.h"

TCase *tcase_module(void);
TCase *tcase_layers(void);
TCase *tcase_layer_grad(void);
TCase *tcase_group_norm_random(void);
TCase *tcase_group_norm_silu(void);
TCase *tcase_optim(void);
TCase *tcase_checkpoint(void);
TCase *tcase_train(void);

int main(void) {
    Suite *s = suite_create("nn");
    suite_add_tcase(s, tcase_module());
    suite_add_tcase(s, tcase_layers());
    suite_add_tcase(s, tcase_layer_grad());
    suite_add_tcase(s, tcase_group_norm_random());
    suite_add_tcase(s, tcase_group_norm_silu());
    suite_add_tcase(s, tcase_optim());
    suite_add_tcase(s, tcase_checkpoint());
    suite_add_tcase(s, tcase_train());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
