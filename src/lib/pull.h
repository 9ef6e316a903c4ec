/* Pulling an image from a registry that speaks the OCI distribution API
 * (Docker Hub, GHCR, a private registry): the transfer is left to the
 * system's skopeo, which writes an OCI layout into a private directory of
 * the layer store; that layout is then imported like any other. Runs the
 * helper and waits for it: call it from a worker, never the event loop. */
#ifndef SBX_PULL_H
#define SBX_PULL_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "layers.h"
#include "oci.h"

struct sbx_pull_progress {
	const char *phase;   /* "resolving", "downloading", "unpacking" */
	int64_t bytes_done;  /* downloaded (or, unpacking, read) so far */
	int64_t bytes_total; /* of the image's layers and config, 0 if unknown */
	int layers_done, layers_total;
};
typedef void (*sbx_pull_progress_fn)(void *ctx, const struct sbx_pull_progress *p);

struct sbx_pull_opts {
	/* Credentials: this file (auth.json or docker config.json format);
	 * NULL: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
	 * then $HOME/.docker/config.json, the first that exists. */
	const char *authfile;
	bool insecure;        /* plain HTTP or an unverified certificate (--tls-verify=false) */
	const char *skopeo;   /* the helper; NULL: "skopeo" from PATH */
	int timeout_sec;      /* whole pull; 0: none */
	sbx_pull_progress_fn progress;
	void *progress_ctx;
};

/* Pull ref ("kortix/suna:0.1.3.30", "registry.example.com:5000/team/img:tag",
 * "busybox@sha256:..."), linux/amd64, and store it with layer references
 * held by owner. Errors say what went wrong in terms a user can act on: an
 * unreachable registry, refused credentials (and where they were read
 * from), an unknown repository or tag, a registry that speaks plain HTTP. */
int sbx_image_pull(struct sbx_layer_store *s, const char *owner, const char *ref, const struct sbx_pull_opts *opts,
		   struct sbx_oci_image **out, sbx_error **err);

/* Which credentials file a pull would use (NULL: none); caller frees. */
char *sbx_pull_find_authfile(void);

/* The error a failed skopeo run means, from its output (for tests and
 * the pull itself): fills err and returns -1. */
int sbx_pull_explain(const char *ref, const char *registry, const char *authfile, const char *output, sbx_error **err);

#endif
