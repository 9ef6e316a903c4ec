/* Logging: to stderr in the foreground (with journald priority prefixes
 * when stderr is the journal), to syslog when daemonized. */
#ifndef SBX_LOG_H
#define SBX_LOG_H

#include <stdbool.h>

enum sbx_log_level { SBX_LOG_ERROR = 0, SBX_LOG_WARN, SBX_LOG_INFO, SBX_LOG_DEBUG };

void sbx_log_init(const char *ident, enum sbx_log_level level, bool use_syslog);
int sbx_log_level_parse(const char *s, enum sbx_log_level *out);
void sbx_log(enum sbx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sbx_log_enabled(enum sbx_log_level level);
/* Whether stderr is the stream named by JOURNAL_STREAM. */
bool sbx_log_stderr_is_journal(void);

#define sbx_error_log(...) sbx_log(SBX_LOG_ERROR, __VA_ARGS__)
#define sbx_warn(...) sbx_log(SBX_LOG_WARN, __VA_ARGS__)
#define sbx_info(...) sbx_log(SBX_LOG_INFO, __VA_ARGS__)
#define sbx_debug(...) sbx_log(SBX_LOG_DEBUG, __VA_ARGS__)

#endif
