/* sandboxctl stats: resource usage of sandboxes, once or as a live table. */
#include "config.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define MAX_SANDBOXES 512

struct sample {
	char id[13];
	char name[64];
	char state[16];
	long long cpu_us, mem, mem_max, pids, pids_max, disk, disk_max, oom, rx, tx;
	double cpus;
	long long at_us;
};

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The sandboxes to show: those named, or every started one. */
static int targets(struct ctl *ctl, int argc, char **argv, char ids[][64], int *n)
{
	*n = 0;
	if (optind < argc) {
		for (int i = optind; i < argc && *n < MAX_SANDBOXES; i++)
			snprintf(ids[(*n)++], 64, "%s", argv[i]);
		return 0;
	}
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "state", "started");
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.list", g, &res);
	if (!root)
		return -1;
	yajl_val list = sbx_json_get(res, "sandboxes");
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len && *n < MAX_SANDBOXES; i++)
		snprintf(ids[(*n)++], 64, "%s", ctl_str(list->u.array.values[i], "id"));
	return 0;
}

static int sample(struct ctl *ctl, const char *ref, struct sample *s)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", ref);
	yajl_gen_map_close(g);
	yajl_val res, info;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.stats", g, &res);
	if (!root)
		return -1;
	_cleanup_json_ yajl_val iroot = ctl_call(ctl, "sandbox.inspect", g, &info);
	if (!iroot)
		return -1;
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", ctl_str(info, "id") ? ctl_str(info, "id") : "?");
	snprintf(s->name, sizeof(s->name), "%s", ctl_str(info, "name") ? ctl_str(info, "name") : "?");
	snprintf(s->state, sizeof(s->state), "%s", ctl_str(res, "state") ? ctl_str(res, "state") : "?");
	s->cpu_us = ctl_int(res, "cpu_usage_us", 0);
	s->mem = ctl_int(res, "memory_bytes", 0);
	s->mem_max = ctl_int(res, "memory_max_bytes", 0);
	s->pids = ctl_int(res, "pids", 0);
	s->pids_max = ctl_int(res, "pids_max", 0);
	s->disk = ctl_int(res, "disk_bytes", 0);
	s->disk_max = ctl_int(res, "disk_max_bytes", 0);
	s->oom = ctl_int(res, "oom_kills", 0);
	yajl_val net = sbx_json_get(res, "net");
	s->rx = ctl_int(net, "rx_bytes", 0);
	s->tx = ctl_int(net, "tx_bytes", 0);
	yajl_val c = sbx_json_get(res, "cpus");
	s->cpus = c && YAJL_IS_NUMBER(c) ? YAJL_GET_DOUBLE(c) : 0;
	if (c && YAJL_IS_INTEGER(c))
		s->cpus = (double)YAJL_GET_INTEGER(c);
	s->at_us = now_us();
	return 0;
}

static void print_table(struct sample *prev, struct sample *cur, int n)
{
	static const char *const headers[] = { "ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS", "DISK USAGE / LIMIT", "NET RX / TX", "OOM" };
	struct ctl_table *t = ctl_table_new(headers, 9);
	for (int i = 0; i < n; i++) {
		struct sample *p = &prev[i], *c = &cur[i];
		char cpu[32], mem[64], memp[16], pids[32], disk[64], net[64], oom[16];
		long long dt = c->at_us - p->at_us;
		snprintf(cpu, sizeof(cpu), "%.2f%%", dt > 0 ? 100.0 * (double)(c->cpu_us - p->cpu_us) / (double)dt : 0.0);
		char a[24], b[24];
		ctl_human_size(c->mem, a, sizeof(a));
		if (c->mem_max)
			ctl_human_size(c->mem_max, b, sizeof(b));
		else
			snprintf(b, sizeof(b), "unlimited");
		snprintf(mem, sizeof(mem), "%s / %s", a, b);
		if (c->mem_max)
			snprintf(memp, sizeof(memp), "%.2f%%", 100.0 * (double)c->mem / (double)c->mem_max);
		else
			snprintf(memp, sizeof(memp), "-");
		if (c->pids_max)
			snprintf(pids, sizeof(pids), "%lld / %lld", c->pids, c->pids_max);
		else
			snprintf(pids, sizeof(pids), "%lld", c->pids);
		ctl_human_size(c->disk, a, sizeof(a));
		if (c->disk_max)
			ctl_human_size(c->disk_max, b, sizeof(b));
		else
			snprintf(b, sizeof(b), "unlimited");
		snprintf(disk, sizeof(disk), "%s / %s", a, b);
		ctl_human_size(c->rx, a, sizeof(a));
		ctl_human_size(c->tx, b, sizeof(b));
		snprintf(net, sizeof(net), "%s / %s", a, b);
		snprintf(oom, sizeof(oom), "%lld", c->oom);
		const char *row[] = { c->id, c->name, cpu, mem, memp, pids, disk, net, oom };
		ctl_table_add(t, row);
	}
	ctl_table_print(t);
}

int cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", no_argument, NULL, 'w' },	       { "no-stream", no_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },	       { NULL, 0, NULL, 0 },
	};
	bool watch = false;
	double interval = 1.0;
	int c;
	while ((c = getopt_long(argc, argv, "wni:h", opts, NULL)) != -1) {
		switch (c) {
		case 'w': watch = true; break;
		case 'n': watch = false; break;
		case 'i': {
			char *end;
			interval = strtod(optarg, &end);
			if (*end || interval < 0.1)
				return ctl_usage_error("stats", "invalid --interval '%s'", optarg);
			break;
		}
		case 'j': ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl stats [--watch] [--interval SECONDS] [--json] [SANDBOX...]\n"
			       "Show CPU, memory, pids, disk and network use of sandboxes (all started ones by default).\n"
			       "--watch redraws the table every interval until interrupted.\n");
			return 0;
		default:
			return ctl_bad_option("stats", argv);
		}
	}
	static char ids[MAX_SANDBOXES][64];
	int n;
	if (targets(ctl, argc, argv, ids, &n) < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		printf("[");
		for (int i = 0; i < n; i++) {
			_cleanup_gen_ yajl_gen g = sbx_gen_new();
			yajl_gen_map_open(g);
			sbx_gen_kv_str(g, "sandbox", ids[i]);
			yajl_gen_map_close(g);
			yajl_val res;
			_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.stats", g, &res);
			if (!root)
				return CTL_EXIT_FAIL;
			if (i)
				printf(",");
			ctl_print_json(res);
		}
		printf("]\n");
		return 0;
	}
	static struct sample prev[MAX_SANDBOXES], cur[MAX_SANDBOXES];
	for (int i = 0; i < n; i++)
		if (sample(ctl, ids[i], &prev[i]) < 0)
			return CTL_EXIT_FAIL;
	for (;;) {
		usleep((useconds_t)(interval * 1e6));
		for (int i = 0; i < n; i++)
			if (sample(ctl, ids[i], &cur[i]) < 0)
				return CTL_EXIT_FAIL;
		if (watch)
			printf("\033[H\033[2J");
		print_table(prev, cur, n);
		fflush(stdout);
		if (!watch)
			return 0;
		memcpy(prev, cur, sizeof(struct sample) * (size_t)n);
		if (optind >= argc && targets(ctl, argc, argv, ids, &n) < 0)
			return CTL_EXIT_FAIL;
		for (int i = 0; i < n; i++)
			if (strcmp(prev[i].id, ids[i]) && strcmp(prev[i].name, ids[i]))
				sample(ctl, ids[i], &prev[i]);
	}
}
