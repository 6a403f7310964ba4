/* SPDX-License-Identifier: MIT */
#ifndef VIOMMU_TOOLS_COMMANDS_H
#define VIOMMU_TOOLS_COMMANDS_H

/* Each subcommand: argv[0] is its name; returns the exit status. */
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_workload(int argc, char **argv);

#endif
