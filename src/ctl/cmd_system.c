/* sandboxctl info */
#include "config.h"
#include <stdio.h>
#include <string.h>

#include "ctl.h"

int cmd_info(struct ctl *ctl, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ctl->json = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("Usage: sandboxctl info [--json]\nShow the daemon's version, host and sandbox counts.\n");
			return 0;
		} else
			return ctl_usage_error("info", "unexpected argument '%s'", argv[i]);
	}
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "system.info", NULL, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
		return 0;
	}
	yajl_val sbs = sbx_json_get(res, "sandboxes");
	printf("version:        %s (api %lld)\n", ctl_str(res, "version"), ctl_int(res, "api_version", 0));
	printf("hostname:       %s\n", ctl_str(res, "hostname"));
	printf("kernel:         %s\n", ctl_str(res, "kernel"));
	printf("cgroup:         %s\n", ctl_str(res, "cgroup"));
	printf("state dir:      %s\n", ctl_str(res, "state_dir") ? ctl_str(res, "state_dir") : "-");
	printf("default image:  %s\n", ctl_str(res, "default_image") ? ctl_str(res, "default_image") : "-");
	printf("sandboxes:      %lld (%lld started)\n", ctl_int(sbs, "total", 0), ctl_int(sbs, "started", 0));
	yajl_val fds = sbx_json_get(res, "descriptors");
	if (fds && YAJL_IS_OBJECT(fds))
		printf("descriptors:    %lld used of %lld (%lld kept for existing sandboxes)\n", ctl_int(fds, "used", 0),
		       ctl_int(fds, "limit", 0), ctl_int(fds, "reserve", 0));
	yajl_val feats = sbx_json_get(res, "features");
	printf("features:      ");
	for (size_t i = 0; feats && YAJL_IS_ARRAY(feats) && i < feats->u.array.len; i++)
		if (YAJL_IS_STRING(feats->u.array.values[i]))
			printf(" %s", YAJL_GET_STRING(feats->u.array.values[i]));
	printf("\n");
	return 0;
}
