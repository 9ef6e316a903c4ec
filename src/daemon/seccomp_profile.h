/* Reading seccomp profile files (OCI/Docker JSON). */
#ifndef SBX_SECCOMP_PROFILE_H
#define SBX_SECCOMP_PROFILE_H

#include "error.h"
#include "seccomp_filter.h"

int sbx_seccomp_profile_load(const char *path, struct sbx_seccomp_profile *out, sbx_error **err);

#endif
