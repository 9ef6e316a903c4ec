/* sandboxctl net publish | unpublish | ports | preview | unpreview */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int net_usage(FILE *out)
{
	fprintf(out, "Usage: sandboxctl net publish SANDBOX PORT [HOST_PORT] [--host-ip ADDRESS]\n"
		     "       sandboxctl net unpublish SANDBOX PORT\n"
		     "       sandboxctl net ports SANDBOX [--json]\n"
		     "       sandboxctl net preview SANDBOX PORT [--expires SECONDS | --rotate] [--json]\n"
		     "       sandboxctl net unpreview SANDBOX [PORT]\n"
		     "publish forwards a TCP port of the host (default on 127.0.0.1) to the sandbox;\n"
		     "preview prints the URL of the port's preview link and its token: the same each time,\n"
		     "through stops and restarts, until the sandbox is deleted or the link revoked\n"
		     "(unpreview; every link without PORT). --rotate gives the link a new token,\n"
		     "--expires a further token that ends after SECONDS.\n");
	return out == stdout ? 0 : CTL_EXIT_FAIL;
}

static int port_arg(const char *s, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

static void print_ports(yajl_val list)
{
	static const char *const headers[] = { "PORT", "HOST" };
	struct ctl_table *t = ctl_table_new(headers, 2);
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val p = list->u.array.values[i];
		char port[16], host[80];
		snprintf(port, sizeof(port), "%lld/tcp", ctl_int(p, "port", 0));
		snprintf(host, sizeof(host), "%s:%lld", ctl_str(p, "host_ip"), ctl_int(p, "host_port", 0));
		const char *row[] = { port, host };
		ctl_table_add(t, row);
	}
	ctl_table_print(t);
}

int cmd_net(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return net_usage(stderr);
	const char *sub = argv[1];
	const char *host_ip = NULL, *expires = NULL;
	bool rotate = false;
	char *args[4];
	int nargs = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ctl->json = true;
		else if (!strcmp(argv[i], "--host-ip") && i + 1 < argc)
			host_ip = argv[++i];
		else if (!strcmp(argv[i], "--expires") && i + 1 < argc)
			expires = argv[++i];
		else if (!strcmp(argv[i], "--rotate"))
			rotate = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return net_usage(stdout);
		else if (argv[i][0] == '-')
			return ctl_usage_error("net", "invalid option '%s'", argv[i]);
		else if (nargs < 4)
			args[nargs++] = argv[i];
		else
			return ctl_usage_error("net", "too many arguments");
	}
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help"))
		return net_usage(stdout);
	long port = 0, host_port = 0, exp = 0;
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	if (nargs >= 1)
		sbx_gen_kv_str(g, "sandbox", args[0]);
	const char *method;
	if (!strcmp(sub, "ports")) {
		if (nargs != 1)
			return ctl_usage_error("net", "ports takes SANDBOX");
		method = "net.ports";
	} else if (!strcmp(sub, "unpreview")) {
		if (nargs < 1 || nargs > 2 || (nargs == 2 && (port_arg(args[1], &port) < 0 || port == 0)))
			return ctl_usage_error("net", "unpreview takes SANDBOX [PORT] (ports 1 to 65535)");
		if (nargs == 2)
			sbx_gen_kv_int(g, "port", port);
		method = "net.unpreview";
	} else if (!strcmp(sub, "publish") || !strcmp(sub, "unpublish") || !strcmp(sub, "preview")) {
		bool publish = !strcmp(sub, "publish");
		if (nargs < 2 || nargs > (publish ? 3 : 2) || port_arg(args[1], &port) < 0 || port == 0 ||
		    (nargs == 3 && port_arg(args[2], &host_port) < 0))
			return ctl_usage_error("net", "%s takes SANDBOX PORT%s (ports 1 to 65535)", sub,
					       publish ? " [HOST_PORT]" : "");
		sbx_gen_kv_int(g, "port", port);
		if (publish && nargs == 3)
			sbx_gen_kv_int(g, "host_port", host_port);
		if (publish && host_ip)
			sbx_gen_kv_str(g, "host_ip", host_ip);
		if (!strcmp(sub, "preview") && expires) {
			char *end;
			exp = strtol(expires, &end, 10);
			if (!*expires || *end || exp < 0)
				return ctl_usage_error("net", "--expires takes a number of seconds");
			sbx_gen_kv_int(g, "expires_s", exp);
		}
		if (!strcmp(sub, "preview") && rotate)
			sbx_gen_kv_bool(g, "rotate", true);
		method = publish ? "net.publish" : !strcmp(sub, "preview") ? "net.preview" : "net.unpublish";
	} else {
		return ctl_usage_error("net", "unknown subcommand '%s'; use publish, unpublish, ports, preview or unpreview",
				       sub);
	}
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, method, g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(!strcmp(method, "net.ports") ? sbx_json_get(res, "ports") : res);
		return 0;
	}
	if (!strcmp(method, "net.ports"))
		print_ports(sbx_json_get(res, "ports"));
	else if (!strcmp(method, "net.publish"))
		printf("%s:%lld\n", ctl_str(res, "host_ip"), ctl_int(res, "host_port", 0));
	else if (!strcmp(method, "net.preview"))
		printf("url:        %s\ntoken:      %s\nexpires_at: %s\ngateway:    %s\npublic:     %s\n",
		       ctl_str(res, "url"), ctl_str(res, "token"),
		       ctl_str(res, "expires_at") ? ctl_str(res, "expires_at") : "never", ctl_str(res, "gateway"),
		       YAJL_IS_TRUE(sbx_json_get(res, "public")) ? "yes (no token needed)" : "no");
	else if (!strcmp(method, "net.unpreview"))
		printf("%lld revoked\n", ctl_int(res, "revoked", 0));
	return 0;
}
