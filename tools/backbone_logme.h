/*
 * How well a stored backbone suits a new labelled dataset before any fine-tuning: LogME
 * (engine/logme.h) of the backbone's penultimate features on the dataset's rows. Shared by
 * `kb recommend` (the transferability half of its backbone ranking) and the fine-tune
 * benchmark, so both score a backbone the same way.
 */
#ifndef KB_TOOLS_BACKBONE_LOGME_H
#define KB_TOOLS_BACKBONE_LOGME_H

#include <stddef.h>
#include <stdint.h>

#include "engine/core/error.h"
#include "engine/dataset.h"

/**
 * LogME of the backbone in weights file `weights` on classification dataset `d`, as a
 * fine-tune would see it: the inputs scaled by a kb_net_scaler fitted on the rows used, the
 * net built with the file's hidden architecture and its weights loaded (the file's input
 * signature must match the data's). At most `max_rows` rows are used (0: all); when `d` has
 * more, a seeded random subset (`seed`) is taken, so the score is deterministic.
 * @return KB_OK; KB_EINVAL (regression data, fewer than 2 rows, signature or architecture
 *         not compatible); the weights reader's KB_EIO / KB_EFORMAT / KB_ECORRUPT; the
 *         LogME solver's KB_ENUMERIC; KB_ENOMEM. `err` names the file.
 */
int backbone_logme(double *score_out, const kb_dataset *d, const char *weights, size_t max_rows,
                   uint64_t seed, kb_error *err);

#endif
