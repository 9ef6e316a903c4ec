/* A map from strings to pointers: open addressing with linear probing,
 * FNV-1a hashes, tombstones for removals, grown at three quarters full.
 * Keys are not copied: each must stay valid, unchanged, while it is in the
 * map (typically a string inside the value itself). */
#ifndef SBX_STRMAP_H
#define SBX_STRMAP_H

#include <stddef.h>

struct sbx_strmap_slot {
	const char *key; /* NULL: empty; a tombstone after a removal */
	void *value;
};

/* All zeros is an empty map. */
struct sbx_strmap {
	struct sbx_strmap_slot *slots;
	size_t cap;  /* a power of two, or 0 */
	size_t used; /* live keys */
	size_t dead; /* tombstones */
};

/* Set key to value (replacing what it had); -1 (errno ENOMEM) when the
 * table cannot grow, the map then unchanged. */
int sbx_strmap_put(struct sbx_strmap *m, const char *key, void *value);
/* The value of key, or NULL. */
void *sbx_strmap_get(const struct sbx_strmap *m, const char *key);
/* Remove key; its value, or NULL when it was not there. */
void *sbx_strmap_del(struct sbx_strmap *m, const char *key);
void sbx_strmap_free(struct sbx_strmap *m);

#endif
