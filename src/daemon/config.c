/* sandboxd.conf: "key = value" lines. Command-line flags override the file;
 * the file overrides built-in defaults. */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "daemon.h"
#include "subnet.h"

static int set_str(char **slot, const char *value)
{
	char *v = strdup(value);
	if (!v)
		return -ENOMEM;
	free(*slot);
	*slot = v;
	return 0;
}

int sbx_config_defaults(struct sbx_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = SBX_LOG_INFO;
	cfg->max_message = 16 * 1024 * 1024;
	cfg->max_sandboxes = 1000;
	cfg->default_stop_timeout_s = 10;
	cfg->default_cpus = 1;
	cfg->default_memory_mb = 1024;
	cfg->default_pids = 1024;
	cfg->default_disk_mb = 10240;
	cfg->userns = true;
	cfg->iptables_forward = true;
	cfg->command_log_mb = 16;
	cfg->userns_start = 1000000000;
	cfg->userns_count = 65536LL * 8192;
	if (set_str(&cfg->config_path, SBX_DEFAULT_CONFIG) < 0 || set_str(&cfg->socket_path, SBX_DEFAULT_SOCKET) < 0 ||
	    set_str(&cfg->socket_group, "sandboxd") < 0 ||
	    set_str(&cfg->state_dir, LOCALSTATEDIR "/lib/sandboxd") < 0 || set_str(&cfg->run_dir, "/run/sandboxd") < 0 ||
	    set_str(&cfg->init_path, PKGLIBEXECDIR "/sandbox-init") < 0 || set_str(&cfg->default_image, "minimal") < 0 ||
	    set_str(&cfg->default_image_path, PKGDATADIR "/images/minimal.tar.gz") < 0 ||
	    set_str(&cfg->disk_quota, "auto") < 0)
		return -ENOMEM;
	if (set_str(&cfg->default_network, "bridge") < 0 || set_str(&cfg->net_bridge, "sbx0") < 0 ||
	    set_str(&cfg->net_subnet_pool, SBX_DEFAULT_SUBNET_POOL) < 0 || set_str(&cfg->firewalld_zone, "sandboxd") < 0 ||
	    set_str(&cfg->net_forbidden, "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10") < 0 ||
	    set_str(&cfg->preview_listen, "127.0.0.1:8480") < 0 || set_str(&cfg->preview_domain, "localhost") < 0 ||
	    set_str(&cfg->preview_url, "auto") < 0 || set_str(&cfg->preview_ports, "30000-32767") < 0)
		return -ENOMEM;
	return 0;
}

void sbx_config_free(struct sbx_config *cfg)
{
	free(cfg->config_path);
	free(cfg->socket_path);
	free(cfg->socket_group);
	free(cfg->state_dir);
	free(cfg->run_dir);
	free(cfg->init_path);
	free(cfg->default_image);
	free(cfg->default_image_path);
	free(cfg->cgroup_parent);
	free(cfg->disk_quota);
	free(cfg->default_network);
	free(cfg->net_bridge);
	free(cfg->net_subnet);
	free(cfg->net_subnet_pool);
	free(cfg->firewalld_zone);
	free(cfg->net_dns);
	free(cfg->net_forbidden);
	free(cfg->preview_listen);
	free(cfg->preview_domain);
	free(cfg->preview_url);
	free(cfg->preview_ports);
	memset(cfg, 0, sizeof(*cfg));
}

static int set_int(const char *key, const char *value, int64_t min, int64_t max, int64_t *out, sbx_error **err)
{
	if (sbx_parse_int64(value, min, max, out) < 0)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not a number between %lld and %lld", key,
				     value, (long long)min, (long long)max);
	return 0;
}

int sbx_config_set(struct sbx_config *cfg, const char *key, const char *value, sbx_error **err)
{
	static const struct {
		const char *key;
		size_t off;
	} strings[] = {
		{ "socket", offsetof(struct sbx_config, socket_path) },
		{ "state_dir", offsetof(struct sbx_config, state_dir) },
		{ "run_dir", offsetof(struct sbx_config, run_dir) },
		{ "init_path", offsetof(struct sbx_config, init_path) },
		{ "default_image", offsetof(struct sbx_config, default_image) },
		{ "default_image_path", offsetof(struct sbx_config, default_image_path) },
		{ "cgroup_parent", offsetof(struct sbx_config, cgroup_parent) },
		{ "bridge", offsetof(struct sbx_config, net_bridge) },
		{ "subnet", offsetof(struct sbx_config, net_subnet) },
		{ "subnet_pool", offsetof(struct sbx_config, net_subnet_pool) },
		{ "firewalld_zone", offsetof(struct sbx_config, firewalld_zone) },
		{ "dns", offsetof(struct sbx_config, net_dns) },
		{ "forbidden_out", offsetof(struct sbx_config, net_forbidden) },
		{ "preview_listen", offsetof(struct sbx_config, preview_listen) },
		{ "preview_domain", offsetof(struct sbx_config, preview_domain) },
		{ "preview_url", offsetof(struct sbx_config, preview_url) },
		{ "preview_ports", offsetof(struct sbx_config, preview_ports) },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(strings); i++) {
		if (strcmp(key, strings[i].key) != 0)
			continue;
		char **slot = (char **)((char *)cfg + strings[i].off);
		if (set_str(slot, value) < 0)
			return sbx_error_errno(err, ENOMEM, "%s", key);
		return 0;
	}
	if (!strcmp(key, "socket_group")) {
		/* A group name or number; the name ends up in logs and in the
		 * error line a refused client gets, so nothing to escape. */
		if (strlen(value) > 64 || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-$") !=
						  strlen(value))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
					     "%s: '%.80s' is not a group name or number (letters, digits, '.', '_', '-', '$'; "
					     "empty for root only)",
					     key, value);
		return set_str(&cfg->socket_group, value) < 0 ? sbx_error_errno(err, ENOMEM, "%s", key) : 0;
	}
	if (!strcmp(key, "log_level")) {
		if (sbx_log_level_parse(value, &cfg->log_level) < 0)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
					     "log_level: '%s' is not one of error, warn, info, debug", value);
		return 0;
	}
	if (!strcmp(key, "max_message"))
		return set_int(key, value, 4096, (int64_t)1 << 30, &cfg->max_message, err);
	if (!strcmp(key, "max_sandboxes"))
		return set_int(key, value, 1, 1000000, &cfg->max_sandboxes, err);
	if (!strcmp(key, "stop_timeout_s"))
		return set_int(key, value, 0, 3600, &cfg->default_stop_timeout_s, err);
	if (!strcmp(key, "command_log_mb"))
		return set_int(key, value, 1, 4096, &cfg->command_log_mb, err);
	/* Defaults obey the minimums a request must (0 is unlimited). */
	static const struct {
		const char *key;
		size_t off;
		int64_t min;
	} limits[] = {
		{ "default_memory_mb", offsetof(struct sbx_config, default_memory_mb), 8 },
		{ "default_pids", offsetof(struct sbx_config, default_pids), 8 },
		{ "default_disk_mb", offsetof(struct sbx_config, default_disk_mb), 16 },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(limits); i++) {
		if (strcmp(key, limits[i].key))
			continue;
		int64_t *slot = (int64_t *)((char *)cfg + limits[i].off);
		if (set_int(key, value, 0, (int64_t)1 << 30, slot, err) < 0)
			return -1;
		if (*slot > 0 && *slot < limits[i].min)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: must be 0 (unlimited) or at least %lld", key,
					     (long long)limits[i].min);
		return 0;
	}
	if (!strcmp(key, "default_cpus")) {
		char *end;
		errno = 0;
		double v = strtod(value, &end);
		if (errno || *end || end == value || v < 0 || v > 4096 || (v > 0 && v < 0.01))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not 0 or a number between 0.01 and 4096", key,
					     value);
		cfg->default_cpus = v;
		return 0;
	}
	if (!strcmp(key, "network")) {
		if (strcmp(value, "bridge") && strcmp(value, "none"))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not bridge or none", key, value);
		return set_str(&cfg->default_network, value) < 0 ? sbx_error_errno(err, ENOMEM, "%s", key) : 0;
	}
	if (!strcmp(key, "disk_quota")) {
		if (strcmp(value, "auto") && strcmp(value, "project") && strcmp(value, "loop"))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not auto, project or loop", key, value);
		return set_str(&cfg->disk_quota, value) < 0 ? sbx_error_errno(err, ENOMEM, "%s", key) : 0;
	}
	if (!strcmp(key, "userns_range")) {
		/* START:COUNT, as in /etc/subuid */
		char *colon = strchr(value, ':');
		int64_t start, count;
		if (!colon)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: expected START:COUNT", key);
		*colon = '\0';
		int r1 = sbx_parse_int64(value, 1, 4294901760LL, &start);
		int r2 = sbx_parse_int64(colon + 1, 65536, 4294901760LL, &count);
		*colon = ':';
		if (r1 < 0 || r2 < 0 || start + count > 4294967295LL)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not START:COUNT within 32-bit ids, "
					     "COUNT at least 65536", key, value);
		cfg->userns_start = start;
		cfg->userns_count = count;
		return 0;
	}
	if (!strcmp(key, "userns")) {
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
			cfg->userns = true;
		else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
			cfg->userns = false;
		else
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not true or false", key, value);
		return 0;
	}
	static const struct {
		const char *key;
		size_t off;
	} bools[] = {
		{ "allow_swap", offsetof(struct sbx_config, allow_swap) },
		{ "iptables_forward", offsetof(struct sbx_config, iptables_forward) },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(bools); i++) {
		if (strcmp(key, bools[i].key))
			continue;
		bool *slot = (bool *)((char *)cfg + bools[i].off);
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
			*slot = true;
		else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
			*slot = false;
		else
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not true or false", key, value);
		return 0;
	}
	return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "unknown setting '%s'", key);
}

static int set_one(const char *key, const char *value, void *data, sbx_error **err)
{
	return sbx_config_set(data, key, value, err);
}

int sbx_config_load(struct sbx_config *cfg, const char *path, bool must_exist, sbx_error **err)
{
	return sbx_conffile_read(path, must_exist, set_one, cfg, err);
}
