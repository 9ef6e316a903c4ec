/* Unit tests of src/lib/firewalls.c against the real kernel: each test
 * runs in a network namespace of its own (Check forks every test), loads
 * a ruleset shaped like Docker's, firewalld's or an administrator's with
 * nft or iptables, and judges it. Skipped without root or the tools. */
#include "config.h"
#include <arpa/inet.h>
#include <check.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "firewalls.h"
#include "netlink.h"
#include "unit.h"

#define TAG "sandboxd test"

static struct sbx_fw_net test_net(void)
{
	struct sbx_fw_net net = { .group = 77, .link_prefix = "sv", .uplink = "eth9", .uplink_index = 9,
				  .own_table = "sandboxd-sbt", .tag = TAG };
	sbx_cidr_parse("10.200.0.0/16", &net.subnet.net, &net.subnet.prefix);
	return net;
}

static bool have(const char *tool)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* A network namespace of the test's own. */
static bool private_net(void)
{
	ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare: %m");
	return true;
}

static void sh(const char *cmd)
{
	int r = system(cmd);
	ck_assert_msg(r == 0, "'%s' exited with %d", cmd, r);
}

static void nft_load(const char *ruleset)
{
	FILE *p = popen("nft -f -", "w");
	ck_assert_ptr_nonnull(p);
	fputs(ruleset, p);
	ck_assert_int_eq(pclose(p), 0);
}

static char *capture(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, p);
	buf[n] = '\0';
	pclose(p);
	return buf;
}

static const struct sbx_fw_judgement *find(const struct sbx_fw_report *r, const char *table, const char *chain)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->chains[i].table, table) && !strcmp(r->chains[i].chain, chain))
			return &r->chains[i];
	return NULL;
}

START_TEST(test_nothing_to_judge)
{
	if (!private_net())
		return;
	struct sbx_fw_net net = test_net();
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	ck_assert_uint_eq(r.n, 0);
	ck_assert(!r.docker_user);
	/* sandboxd's own table is never judged */
	nft_load("table inet sandboxd-sbt {\n chain forward { type filter hook forward priority 0; policy drop; }\n}\n");
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	ck_assert_uint_eq(r.n, 0);
	sbx_fw_report_free(&r);
}
END_TEST

/* Docker's filter table, as dockerd writes it through iptables-nft when it
 * turns forwarding on itself. */
static void docker_rules(void)
{
	sh("iptables -N DOCKER && iptables -N DOCKER-ISOLATION-STAGE-1 && iptables -N DOCKER-ISOLATION-STAGE-2 && "
	   "iptables -N DOCKER-USER && iptables -P FORWARD DROP && "
	   "iptables -A FORWARD -j DOCKER-USER && iptables -A FORWARD -j DOCKER-ISOLATION-STAGE-1 && "
	   "iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT && "
	   "iptables -A FORWARD -o docker0 -j DOCKER && iptables -A FORWARD -i docker0 ! -o docker0 -j ACCEPT && "
	   "iptables -A FORWARD -i docker0 -o docker0 -j ACCEPT && "
	   "iptables -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2 && "
	   "iptables -A DOCKER-ISOLATION-STAGE-1 -j RETURN && iptables -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP && "
	   "iptables -A DOCKER-ISOLATION-STAGE-2 -j RETURN && iptables -A DOCKER-USER -j RETURN");
}

START_TEST(test_docker_forward_drop_and_our_rules)
{
	if (!private_net())
		return;
	docker_rules();
	char *before = capture("nft list ruleset");
	struct sbx_fw_net net = test_net();
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	ck_assert(r.docker_user);
	ck_assert_uint_eq(r.ours, 0);
	const struct sbx_fw_judgement *j = find(&r, "filter", "FORWARD");
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(j->owner, SBX_FW_IPTABLES);
	ck_assert_str_eq(j->place, "DOCKER-USER");
	ck_assert_int_eq(j->out, SBX_FW_DROP);
	ck_assert_int_eq(j->back, SBX_FW_DROP);
	ck_assert(!j->uncertain);
	ck_assert_msg(strstr(j->why_out, "policy drop"), "%s", j->why_out);
	sbx_fw_report_free(&r);

	ck_assert_msg(sbx_fw_iptables_add(&net, "DOCKER-USER", &e) == 0, "%s", e ? e->msg : "");
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	ck_assert_uint_eq(r.ours, 2);
	ck_assert_str_eq(r.ours_chain, "DOCKER-USER");
	j = find(&r, "filter", "FORWARD");
	ck_assert_int_eq(j->out, SBX_FW_ACCEPT);
	ck_assert_int_eq(j->back, SBX_FW_ACCEPT);
	ck_assert_msg(strstr(j->why_out, TAG), "%s", j->why_out);
	sbx_fw_report_free(&r);

	/* iptables (and so dockerd) still reads and changes the chain. */
	char *listed = capture("iptables -S DOCKER-USER 2>&1");
	ck_assert_msg(strstr(listed, "-A DOCKER-USER -s 10.200.0.0/16 -i sv+ -m comment --comment \"" TAG
				     "\" -j ACCEPT"),
		      "%s", listed);
	ck_assert_msg(strstr(listed, "-A DOCKER-USER -d 10.200.0.0/16 -o sv+ -m conntrack --ctstate "
				     "RELATED,ESTABLISHED -m comment --comment \"" TAG "\" -j ACCEPT"),
		      "%s", listed);
	free(listed);
	sh("iptables -A DOCKER-USER -s 192.0.2.7 -j ACCEPT && iptables -C DOCKER-USER -s 192.0.2.7 -j ACCEPT && "
	   "iptables -D DOCKER-USER -s 192.0.2.7 -j ACCEPT");

	/* A second daemon's tag is not ours. */
	ck_assert_int_eq(sbx_fw_iptables_remove("sandboxd other", &e), 0);
	ck_assert_int_eq(sbx_fw_iptables_remove(TAG, &e), 2);
	ck_assert_int_eq(sbx_fw_iptables_remove(TAG, &e), 0);
	char *after = capture("nft list ruleset");
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_forward_rules_without_docker_user)
{
	if (!private_net())
		return;
	/* RHEL's old default: an accepting policy and a final REJECT, and a
	 * prefix that is not a whole number of bytes. */
	sh("iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP && "
	   "iptables -A FORWARD -j REJECT --reject-with icmp-host-prohibited");
	struct sbx_fw_net net = test_net();
	sbx_cidr_parse("10.200.16.0/20", &net.subnet.net, &net.subnet.prefix);
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	const struct sbx_fw_judgement *j = find(&r, "filter", "FORWARD");
	ck_assert_int_eq(j->out, SBX_FW_DROP);
	ck_assert_msg(strstr(j->why_out, "REJECT"), "%s", j->why_out);
	sbx_fw_report_free(&r);
	ck_assert_int_eq(sbx_fw_iptables_add(&net, "FORWARD", &e), 0);
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	j = find(&r, "filter", "FORWARD");
	ck_assert_int_eq(j->out, SBX_FW_ACCEPT);
	ck_assert_int_eq(j->back, SBX_FW_ACCEPT);
	sbx_fw_report_free(&r);
	char *listed = capture("iptables -S FORWARD 2>&1");
	ck_assert_msg(strstr(listed, "-s 10.200.16.0/20 -i sv+"), "%s", listed);
	free(listed);
	/* Another sandboxd's subnet is not let through by ours. */
	struct sbx_fw_net other = test_net();
	sbx_cidr_parse("10.201.0.0/16", &other.subnet.net, &other.subnet.prefix);
	ck_assert_int_eq(sbx_fw_judge(&other, &r, &e), 0);
	ck_assert_int_eq(find(&r, "filter", "FORWARD")->out, SBX_FW_DROP);
	sbx_fw_report_free(&r);
}
END_TEST

/* The shape of firewalld's nftables table (1.x): sets for the conntrack
 * states, zones by input link, a final reject. */
static const char firewalld_rules[] =
	"table inet firewalld {\n"
	" chain filter_FORWARD {\n"
	"  type filter hook forward priority filter + 10; policy accept;\n"
	"  ct state { established, related } accept\n"
	"  ct status dnat accept\n"
	"  iifname \"lo\" accept\n"
	"  ct state invalid drop\n"
	"  ip6 daddr { ::/96, ::ffff:0.0.0.0/96 } reject with icmpv6 addr-unreachable\n"
	"  jump filter_FORWARD_ZONES\n"
	"  reject with icmpx admin-prohibited\n"
	" }\n"
	" chain filter_FORWARD_ZONES {\n"
	"  %s\n"
	"  goto filter_FWD_public\n"
	" }\n"
	" chain filter_FWD_public {\n"
	"  jump filter_FWD_public_allow\n"
	"  reject with icmpx admin-prohibited\n"
	" }\n"
	" chain filter_FWD_public_allow {\n"
	"  oifname \"eth9\" tcp dport { 22, 80 } accept\n"
	" }\n"
	" chain filter_FWD_sandboxd {\n"
	"  accept\n"
	" }\n"
	"}\n";

START_TEST(test_firewalld_zones)
{
	if (!private_net())
		return;
	char rules[2048];
	snprintf(rules, sizeof(rules), firewalld_rules, "");
	nft_load(rules);
	struct sbx_fw_net net = test_net();
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	const struct sbx_fw_judgement *j = find(&r, "firewalld", "filter_FORWARD");
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(j->owner, SBX_FW_FIREWALLD);
	ck_assert_int_eq(j->out, SBX_FW_DROP);
	ck_assert_msg(strstr(j->why_out, "reject") && strstr(j->why_out, "filter_FWD_public"), "%s", j->why_out);
	/* the answers pass the conntrack set */
	ck_assert_int_eq(j->back, SBX_FW_ACCEPT);
	ck_assert(!j->uncertain);
	sbx_fw_report_free(&r);

	sh("nft delete table inet firewalld");
	snprintf(rules, sizeof(rules), firewalld_rules, "iifname \"sv*\" goto filter_FWD_sandboxd");
	nft_load(rules);
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	j = find(&r, "firewalld", "filter_FORWARD");
	ck_assert_int_eq(j->out, SBX_FW_ACCEPT);
	ck_assert_int_eq(j->back, SBX_FW_ACCEPT);
	sbx_fw_report_free(&r);
}
END_TEST

START_TEST(test_admin_inet_filter)
{
	if (!private_net())
		return;
	nft_load("table inet filter {\n"
		 " chain forward { type filter hook forward priority 0; policy drop;\n"
		 "  iifname \"wg0\" accept\n"
		 "  ip saddr 10.0.0.0/8 ip daddr 10.0.0.0/8 accept\n"
		 " }\n"
		 "}\n");
	struct sbx_fw_net net = test_net();
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	const struct sbx_fw_judgement *j = find(&r, "filter", "forward");
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(j->owner, SBX_FW_OTHER);
	ck_assert_str_eq(j->family, "inet");
	ck_assert_int_eq(j->out, SBX_FW_DROP);
	ck_assert_int_eq(j->back, SBX_FW_DROP);
	char fix[1024];
	sbx_fw_manual_fix(&net, j, fix, sizeof(fix));
	ck_assert_msg(strstr(fix, "nft 'insert rule inet filter forward iifname \"sv*\" ip saddr 10.200.0.0/16 accept'"),
		      "%s", fix);
	sbx_fw_report_free(&r);

	/* The fix it names works, run as it is written. */
	int ran = 0;
	for (const char *at = fix; (at = strstr(at, "nft '"));) {
		const char *end = strchr(at + 5, '\'');
		ck_assert_ptr_nonnull(end);
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "%.*s", (int)(end + 1 - at), at);
		sh(cmd);
		ran++;
		at = end + 1;
	}
	ck_assert_int_eq(ran, 2);
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	j = find(&r, "filter", "forward");
	ck_assert_int_eq(j->out, SBX_FW_ACCEPT);
	ck_assert_int_eq(j->back, SBX_FW_ACCEPT);
	sbx_fw_report_free(&r);
}
END_TEST

START_TEST(test_sets_maps_and_groups)
{
	if (!private_net())
		return;
	nft_load("table ip t {\n"
		 " set private { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.0.0/16 } }\n"
		 " chain f1 { type filter hook forward priority 5; policy accept;\n"
		 "  oifname vmap { \"eth9\" : jump out, \"eth8\" : drop }\n"
		 " }\n"
		 " chain out {\n  ip saddr @private meta iifgroup 77 drop\n }\n"
		 "}\n");
	struct sbx_fw_net net = test_net();
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	const struct sbx_fw_judgement *j = find(&r, "t", "f1");
	ck_assert_int_eq(j->out, SBX_FW_DROP);
	ck_assert_msg(strstr(j->why_out, "chain out"), "%s", j->why_out);
	ck_assert_int_eq(j->back, SBX_FW_ACCEPT);
	ck_assert(!j->uncertain);
	sbx_fw_report_free(&r);
	/* Another group: the rule does not match. */
	net.group = 78;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	ck_assert_int_eq(find(&r, "t", "f1")->out, SBX_FW_ACCEPT);
	sbx_fw_report_free(&r);
	/* An address outside the interval set. */
	net.group = 77;
	sbx_cidr_parse("100.70.0.0/16", &net.subnet.net, &net.subnet.prefix);
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	ck_assert_int_eq(find(&r, "t", "f1")->out, SBX_FW_ACCEPT);
	sbx_fw_report_free(&r);
}
END_TEST

/* firewalld's table of its reloads and panic mode: no rule to add there. */
START_TEST(test_firewalld_policy_drop)
{
	if (!private_net())
		return;
	nft_load("table inet firewalld_policy_drop {\n"
		 " chain filter_forward { type filter hook forward priority filter + 1; policy drop; }\n"
		 "}\n");
	struct sbx_fw_net net = test_net();
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	const struct sbx_fw_judgement *j = find(&r, "firewalld_policy_drop", "filter_forward");
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(j->out, SBX_FW_DROP);
	char fix[1024];
	sbx_fw_manual_fix(&net, j, fix, sizeof(fix));
	ck_assert_msg(strstr(fix, "firewall-cmd --panic-off") && !strstr(fix, "nft "), "%s", fix);
	sbx_fw_report_free(&r);
}
END_TEST

START_TEST(test_unknown_matches_are_uncertain)
{
	if (!private_net())
		return;
	nft_load("table inet x {\n"
		 " chain f { type filter hook forward priority 0; policy accept;\n"
		 "  limit rate over 10/second drop\n"
		 "  meta cpu 3 drop\n"
		 " }\n"
		 "}\n");
	struct sbx_fw_net net = test_net();
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_fw_judge(&net, &r, &e), 0);
	const struct sbx_fw_judgement *j = find(&r, "x", "f");
	ck_assert_int_eq(j->out, SBX_FW_ACCEPT);
	ck_assert(j->uncertain);
	sbx_fw_report_free(&r);
}
END_TEST

/* Another firewall writing its rules while sandboxd reads them: nftables
 * marks a dump that a change cut across (NLM_F_DUMP_INTR), and such a read
 * is made again, never reported as an error nor judged as read. The rules
 * are many, so that each dump takes several reads; a shell adds and
 * deletes a table of its own meanwhile. */
static pid_t churn_start(void)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c",
		      "while :; do nft add table ip churn; sleep 0.05; nft delete table ip churn; sleep 0.05; done",
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void churn_stop(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* n lines "<before>192.0.X.Y<after>", each with an address of its own. */
static void many_rules(FILE *f, const char *before, const char *after, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "%s192.0.%d.%d%s\n", before, i / 250, i % 250, after);
}

START_TEST(test_reads_torn_by_changes_are_made_again)
{
	if (!private_net())
		return;
	FILE *p = popen("nft -f -", "w");
	ck_assert_ptr_nonnull(p);
	fputs("table inet admin {\n chain forward { type filter hook forward priority 0; policy drop;\n", p);
	many_rules(p, "  ip saddr ", " counter drop", 1000);
	fputs("  ip saddr 10.200.0.0/16 accept\n  ip daddr 10.200.0.0/16 accept\n }\n}\n", p);
	ck_assert_int_eq(pclose(p), 0);
	struct sbx_fw_net net = test_net();
	pid_t churn = churn_start();
	int judged = 0;
	for (int i = 0; i < 100; i++) {
		struct sbx_fw_report r;
		sbx_error *e = NULL;
		int rc = sbx_fw_judge(&net, &r, &e);
		if (rc < 0)
			churn_stop(churn);
		ck_assert_msg(rc == 0, "judge %d: %s", i, e ? e->msg : "");
		const struct sbx_fw_judgement *j = find(&r, "admin", "forward");
		if (!j)
			churn_stop(churn);
		ck_assert_ptr_nonnull(j);
		ck_assert_int_eq(j->out, SBX_FW_ACCEPT);
		ck_assert_int_eq(j->back, SBX_FW_ACCEPT);
		ck_assert(!j->uncertain);
		sbx_fw_report_free(&r);
		judged++;
	}
	churn_stop(churn);
	ck_assert_int_eq(judged, 100);
}
END_TEST

START_TEST(test_our_rules_are_all_removed_while_others_change)
{
	if (!private_net())
		return;
	sh("iptables -P FORWARD ACCEPT"); /* makes table ip filter */
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 500; i++) { /* two rules each */
			struct sbx_fw_net net = test_net();
			sbx_error *e = NULL;
			ck_assert_msg(sbx_fw_iptables_add(&net, "FORWARD", &e) == 0, "%s", e ? e->msg : "");
		}
		pid_t churn = churn_start();
		sbx_error *e = NULL;
		int removed = sbx_fw_iptables_remove(TAG, &e);
		churn_stop(churn);
		ck_assert_msg(removed == 1000, "round %d: removed %d: %s", round, removed, e ? e->msg : "");
		ck_assert_int_eq(sbx_fw_iptables_remove(TAG, &e), 0);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("firewalls");
	TCase *tc = tcase_create("judge");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_nothing_to_judge);
	/* iptables-legacy would keep its rules out of nftables' sight. */
	if (have("iptables") && system("iptables -V 2>/dev/null | grep -q nf_tables") == 0) {
		tcase_add_test(tc, test_docker_forward_drop_and_our_rules);
		tcase_add_test(tc, test_forward_rules_without_docker_user);
		tcase_add_test(tc, test_our_rules_are_all_removed_while_others_change);
	} else {
		fprintf(stderr, "test_firewalls: no iptables-nft: the tests of iptables' chains are skipped\n");
	}
	tcase_add_test(tc, test_firewalld_zones);
	tcase_add_test(tc, test_admin_inet_filter);
	tcase_add_test(tc, test_sets_maps_and_groups);
	tcase_add_test(tc, test_unknown_matches_are_uncertain);
	tcase_add_test(tc, test_firewalld_policy_drop);
	tcase_add_test(tc, test_reads_torn_by_changes_are_made_again);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0 || !have("nft")) {
		fprintf(stderr, "test_firewalls: skipped: needs root (a network namespace of its own) and nft\n");
		return 77;
	}
	return unit_run(suite());
}
