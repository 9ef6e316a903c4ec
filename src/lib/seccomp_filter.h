/* Seccomp filters for sandbox processes. A profile is compiled to BPF once
 * (libseccomp) and the program is loaded into each new process with one
 * system call, so a filter costs an exec almost nothing. */
#ifndef SBX_SECCOMP_FILTER_H
#define SBX_SECCOMP_FILTER_H

#include <linux/filter.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct sbx_seccomp_rule {
	char **names;   /* NULL-terminated syscall names; unknown ones are skipped */
	uint32_t action;
	unsigned int nargs;
	struct scmp_arg_cmp args[6];
};

struct sbx_seccomp_profile {
	uint32_t default_action;
	struct sbx_seccomp_rule *rules;
	size_t nrules;
};

struct sbx_bpf {
	struct sock_filter *insns;
	unsigned short len;
};

/* The default profile: an allow list modelled on Docker's default, with
 * namespace creation, mounts, kernel keyrings, module and kexec loading,
 * BPF, perf, userfaultfd, io_uring, AF_VSOCK and foreign ABIs refused. */
int sbx_seccomp_compile_default(struct sbx_bpf *out, sbx_error **err);
int sbx_seccomp_compile(const struct sbx_seccomp_profile *p, struct sbx_bpf *out, sbx_error **err);
void sbx_seccomp_profile_free(struct sbx_seccomp_profile *p);
void sbx_bpf_free(struct sbx_bpf *b);
/* In a child, after no_new_privs: install the program. */
int sbx_seccomp_load(const struct sbx_bpf *b, sbx_error **err);

#endif
