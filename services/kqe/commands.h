/*
 * The subcommands of the kqe admin tool. Each takes the arguments after its
 * name (argv[0] is the subcommand) and the loaded configuration, and returns
 * the process exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef KQE_ADMIN_COMMANDS_H
#define KQE_ADMIN_COMMANDS_H

#include "kqe/config.h"

int cmd_migrate(int argc, char **argv, const struct config *cfg);
int cmd_import(int argc, char **argv, const struct config *cfg);
int cmd_seed(int argc, char **argv, const struct config *cfg);
int cmd_token(int argc, char **argv, const struct config *cfg);
int cmd_audit(int argc, char **argv, const struct config *cfg);
int cmd_rollups(int argc, char **argv, const struct config *cfg);
int cmd_retention(int argc, char **argv, const struct config *cfg);
int cmd_jobs(int argc, char **argv, const struct config *cfg);
int cmd_sdc(int argc, char **argv, const struct config *cfg);
int cmd_release(int argc, char **argv, const struct config *cfg);
int cmd_health(int argc, char **argv, const struct config *cfg);

#endif
