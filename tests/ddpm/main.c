/* The ddpm layer's Check suite. */
#include <stdlib.h>

#include "helpers.h"

TCase *tcase_schedule(void);
TCase *tcase_diffusion(void);
TCase *tcase_sample(void);
TCase *tcase_train(void);
TCase *tcase_unet(void);
TCase *tcase_golden(void);
TCase *tcase_toy(void);
TCase *tcase_bound(void);
TCase *tcase_metrics(void);
TCase *tcase_classifier(void);

int main(void) {
    Suite *s = suite_create("ddpm");
    suite_add_tcase(s, tcase_schedule());
    suite_add_tcase(s, tcase_diffusion());
    suite_add_tcase(s, tcase_sample());
    suite_add_tcase(s, tcase_train());
    suite_add_tcase(s, tcase_unet());
    suite_add_tcase(s, tcase_golden());
    suite_add_tcase(s, tcase_toy());
    suite_add_tcase(s, tcase_bound());
    suite_add_tcase(s, tcase_metrics());
    suite_add_tcase(s, tcase_classifier());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
