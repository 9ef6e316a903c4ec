/* Images come from anyone: registries, archives users were handed. The
 * first byte picks the path: the JSON parsers of manifests, indexes,
 * configs and docker save's manifest.json, an image reference, or the
 * layer unpacker fed the rest as a blob (tar, gzip or zstd) into a scratch
 * directory. Nothing may crash, and an unpacked layer must stay inside its
 * directory: a marker beside it must never change. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imageref.h"
#include "json.h"
#include "layers.h"
#include "oci.h"
#include "util.h"

static char scratch[256];

static void setup_scratch(void)
{
	if (scratch[0])
		return;
	const char *t = getenv("TMPDIR");
	snprintf(scratch, sizeof(scratch), "%s/sbx-fuzz-image-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(scratch))
		abort();
	char p[300];
	snprintf(p, sizeof(p), "%s/marker", scratch);
	FILE *f = fopen(p, "w");
	fputs("untouched", f);
	fclose(f);
}

static void check_marker(void)
{
	char p[300], buf[32] = "";
	snprintf(p, sizeof(p), "%s/marker", scratch);
	FILE *f = fopen(p, "r");
	if (!f || !fgets(buf, sizeof(buf), f) || strcmp(buf, "untouched") != 0)
		abort();
	fclose(f);
	/* Nothing but the marker and the layer directory beside it. */
	DIR *d = opendir(scratch);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "marker") &&
		    strcmp(de->d_name, "layer"))
			abort();
	closedir(d);
}

static void unpack(const uint8_t *data, size_t size)
{
	setup_scratch();
	int mfd = memfd_create("blob", MFD_CLOEXEC);
	if (mfd < 0 || (size && write(mfd, data, size) != (ssize_t)size) || lseek(mfd, 0, SEEK_SET) < 0)
		abort();
	int root = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mkdirat(root, "layer", 0755) < 0 && errno != EEXIST)
		abort();
	int layer = openat(root, "layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sbx_error *err = NULL;
	int64_t bytes = 0, entries = 0;
	if (sbx_layer_unpack_fd(layer, mfd, &bytes, &entries, &err) < 0 && (!err || !err->msg))
		abort();
	sbx_error_free(err);
	close(layer);
	close(mfd);
	check_marker();
	if (sbx_rm_rf_at(root, "layer", NULL) < 0)
		abort();
	close(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 6;
	data++;
	size--;
	if (mode == 5) {
		unpack(data, size);
		return 0;
	}
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	sbx_error *err = NULL;
	switch (mode) {
	case 0: {
		struct sbx_oci_descriptor cfg, *layers = NULL;
		size_t n = 0;
		if (sbx_oci_parse_manifest(text, &cfg, &layers, &n, &err) == 0) {
			if (!sbx_digest_valid(cfg.digest) || n > SBX_OCI_LAYERS_MAX)
				abort();
			for (size_t i = 0; i < n; i++)
				if (!sbx_digest_valid(layers[i].digest) || layers[i].size < 0)
					abort();
		}
		free(layers);
		break;
	}
	case 1: {
		struct sbx_oci_descriptor d;
		char *name = NULL;
		if (sbx_oci_parse_index(text, size > 3 ? "latest" : NULL, &d, &name, &err) == 0 && !sbx_digest_valid(d.digest))
			abort();
		free(name);
		break;
	}
	case 2: {
		struct sbx_image_config c;
		char **ids = NULL;
		if (sbx_oci_parse_config(text, &c, &ids, &err) == 0) {
			if (!c.env || !c.exposed_ports)
				abort();
			for (char **e = c.env; *e; e++)
				if (!strchr(*e, '='))
					abort();
			sbx_image_config_free(&c);
			sbx_strv_free(ids);
		}
		break;
	}
	case 3: {
		char *cfg = NULL, **layers = NULL, **tags = NULL;
		if (sbx_docker_parse_manifest(text, size & 1 ? "img:v1" : NULL, &cfg, &layers, &tags, &err) == 0) {
			if (!cfg || !layers || !tags)
				abort();
			free(cfg);
			sbx_strv_free(layers);
			sbx_strv_free(tags);
		}
		break;
	}
	default: {
		struct sbx_image_ref r;
		if (sbx_image_ref_parse(text, "ref", &r, &err) == 0) {
			char *n = sbx_image_ref_normalize(&r);
			char *f = sbx_image_ref_format(&r);
			if (!n || !f || strcmp(f, text) != 0 || !sbx_image_ref_valid(n))
				abort();
			free(n);
			free(f);
			sbx_image_ref_free(&r);
		}
		break;
	}
	}
	sbx_error_free(err);
	free(text);
	return 0;
}
