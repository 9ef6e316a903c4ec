/* Open addressing keeps a lookup to a hash and a short scan of one array,
 * whatever the number of keys: the registry finds a sandbox by id or name
 * for nearly every request. */
#include "config.h"
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

static const char tombstone[] = "";
#define TOMB tombstone

static uint64_t hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The slot of key, or (with insert) where it would go: the first tombstone
 * passed, else the empty slot that ended the scan. */
static struct sbx_strmap_slot *find(const struct sbx_strmap *m, const char *key, bool insert)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	struct sbx_strmap_slot *reuse = NULL;
	for (size_t i = hash(key) & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
		struct sbx_strmap_slot *s = &m->slots[i];
		if (!s->key)
			return insert ? (reuse ? reuse : s) : NULL;
		if (s->key == TOMB) {
			if (!reuse)
				reuse = s;
		} else if (!strcmp(s->key, key)) {
			return s;
		}
	}
	return insert ? reuse : NULL;
}

static int resize(struct sbx_strmap *m, size_t cap)
{
	struct sbx_strmap_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	struct sbx_strmap old = *m;
	m->slots = slots;
	m->cap = cap;
	m->used = m->dead = 0;
	for (size_t i = 0; i < old.cap; i++) {
		if (old.slots[i].key && old.slots[i].key != TOMB) {
			struct sbx_strmap_slot *s = find(m, old.slots[i].key, true);
			*s = old.slots[i];
			m->used++;
		}
	}
	free(old.slots);
	return 0;
}

int sbx_strmap_put(struct sbx_strmap *m, const char *key, void *value)
{
	struct sbx_strmap_slot *s = find(m, key, false);
	if (s) {
		s->value = value;
		return 0;
	}
	if ((m->used + m->dead + 1) * 4 > m->cap * 3) {
		/* Mostly tombstones: the same size, cleaned; else twice as big. */
		size_t cap = m->cap ? m->cap : 16;
		if ((m->used + 1) * 2 > m->cap)
			cap = m->cap ? m->cap * 2 : 16;
		if (resize(m, cap) < 0) {
			errno = ENOMEM;
			return -1;
		}
	}
	s = find(m, key, true);
	if (s->key == TOMB)
		m->dead--;
	s->key = key;
	s->value = value;
	m->used++;
	return 0;
}

void *sbx_strmap_get(const struct sbx_strmap *m, const char *key)
{
	struct sbx_strmap_slot *s = find(m, key, false);
	return s ? s->value : NULL;
}

void *sbx_strmap_del(struct sbx_strmap *m, const char *key)
{
	struct sbx_strmap_slot *s = find(m, key, false);
	if (!s)
		return NULL;
	void *v = s->value;
	s->key = TOMB;
	s->value = NULL;
	m->used--;
	m->dead++;
	return v;
}

void sbx_strmap_free(struct sbx_strmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
