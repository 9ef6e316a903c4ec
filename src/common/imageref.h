/* Registry-style image references: [DOMAIN[:PORT]/]PATH[:TAG][@DIGEST], as
 * the distribution spec defines them ("kortix/suna:0.1.3.30",
 * "registry.example.com:5000/team/img:tag", "busybox@sha256:..."). Shared
 * by sandboxd (image names, pulls) and sandboxctl (checking before it
 * sends). Parses; never resolves or contacts anything. */
#ifndef SBX_IMAGEREF_H
#define SBX_IMAGEREF_H

#include <stdbool.h>

#include "error.h"

/* The longest reference accepted: the spec's name limit (255) plus a
 * 128-character tag and a digest. */
#define SBX_IMAGE_REF_MAX 512

struct sbx_image_ref {
	char *domain; /* "registry.example.com:5000", or NULL when none was written */
	char *path;   /* "team/img" */
	char *tag;    /* "tag", or NULL */
	char *digest; /* "sha256:...", or NULL */
};

/* Parse s; on failure err says which part is wrong and how (param names
 * the request parameter the text came from, e.g. "name" or "ref"). */
int sbx_image_ref_parse(const char *s, const char *param, struct sbx_image_ref *out, sbx_error **err);
void sbx_image_ref_free(struct sbx_image_ref *r);
bool sbx_image_ref_valid(const char *s);

/* The full form a registry client is given: a missing domain becomes
 * docker.io, a one-part Docker Hub path gains "library/", and a reference
 * with neither tag nor digest gains ":latest". Caller frees. */
char *sbx_image_ref_normalize(const struct sbx_image_ref *r);
/* The reference as written back: [domain/]path[:tag][@digest]. */
char *sbx_image_ref_format(const struct sbx_image_ref *r);

#endif
