/* SPDX-License-Identifier: MIT */
/*
 * Parsing and checking scenario files.  The whole file is checked before
 * anything runs, and every error is reported, so a person fixes a file in
 * one go: syntax first (words, keys, numbers), then meaning (names used
 * before they exist, commands that do not fit the chosen IOMMU, alignment).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <viommu/viommu.h>

#include "scenario.h"

#define MAX_WORDS 16
#define KiB 1024ull

struct kv {
	char *key;
	char *value;
	bool used;
};

struct line_ctx {
	struct scenario *sc;
	FILE *errors;
	unsigned line;
	int nerr;
	struct kv kv[MAX_WORDS];
	size_t nkv;
	char *pos[MAX_WORDS]; /* words without '=' after the command */
	size_t npos;
};

static void error_at(struct line_ctx *lc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void error_at(struct line_ctx *lc, const char *fmt, ...)
{
	va_list ap;

	fprintf(lc->errors, "%s:%u: error: ", lc->sc->file, lc->line);
	va_start(ap, fmt);
	vfprintf(lc->errors, fmt, ap);
	va_end(ap);
	fputc('\n', lc->errors);
	lc->nerr++;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' &&
		    *s != '-')
			return false;
	return true;
}

/* Decimal or 0x hex, with an optional K/M/G/T (powers of 1024) suffix. */
static bool parse_number(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	unsigned base = 10;
	const char *p = s;
	size_t len = strlen(s);

	if (len && strchr("KMGT", s[len - 1])) {
		mult = 1ull << (10 * (strchr("KMGT", s[len - 1]) - "KMGT" + 1));
		len--;
	}
	if (len > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
		len -= 2;
	}
	if (!len)
		return false;
	for (; len; p++, len--) {
		unsigned d;

		if (isdigit((unsigned char)*p))
			d = *p - '0';
		else if (base == 16 && isxdigit((unsigned char)*p))
			d = (tolower((unsigned char)*p) - 'a') + 10;
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (mult > 1 && v > UINT64_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

static struct kv *find_key(struct line_ctx *lc, const char *key)
{
	size_t i;

	for (i = 0; i < lc->nkv; i++)
		if (!strcmp(lc->kv[i].key, key)) {
			lc->kv[i].used = true;
			return &lc->kv[i];
		}
	return NULL;
}

/* A number key; returns false (and reports) when present but bad. */
static bool get_num(struct line_ctx *lc, const char *key, bool required,
		    uint64_t *out, bool *present)
{
	struct kv *kv = find_key(lc, key);

	if (present)
		*present = kv != NULL;
	if (!kv) {
		if (required) {
			error_at(lc, "missing %s=", key);
			return false;
		}
		return true;
	}
	if (!parse_number(kv->value, out)) {
		error_at(lc,
			 "%s=%s is not a number (decimal or 0x hex, "
			 "optionally with K, M, G or T)",
			 key, kv->value);
		return false;
	}
	return true;
}

static const char *get_str(struct line_ctx *lc, const char *key, bool required)
{
	struct kv *kv = find_key(lc, key);

	if (!kv && required)
		error_at(lc, "missing %s=", key);
	return kv ? kv->value : NULL;
}

static bool get_onoff(struct line_ctx *lc, const char *key, bool *out)
{
	const char *v = get_str(lc, key, false);

	if (!v)
		return true;
	if (!strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "off"))
		*out = false;
	else {
		error_at(lc, "%s=%s: expected on or off", key, v);
		return false;
	}
	return true;
}

static bool parse_perm(const char *v, unsigned *perm)
{
	if (!strcmp(v, "r"))
		*perm = VIOMMU_PERM_READ;
	else if (!strcmp(v, "w"))
		*perm = VIOMMU_PERM_WRITE;
	else if (!strcmp(v, "rw"))
		*perm = VIOMMU_PERM_RW;
	else
		return false;
	return true;
}

static bool get_perm(struct line_ctx *lc, const char *key, bool required,
		     unsigned *perm)
{
	const char *v = get_str(lc, key, required);

	if (!v)
		return !required;
	if (!parse_perm(v, perm)) {
		error_at(lc, "%s=%s: expected r, w or rw", key, v);
		return false;
	}
	return true;
}

static bool parse_flags(struct line_ctx *lc, const char *v, unsigned *flags)
{
	char *copy = strdup(v), *save = NULL, *f;
	bool ok = copy != NULL;

	*flags = 0;
	for (f = copy ? strtok_r(copy, ",", &save) : NULL; f;
	     f = strtok_r(NULL, ",", &save)) {
		if (!strcmp(f, "map"))
			*flags |= VIOMMU_NOTIFY_MAP;
		else if (!strcmp(f, "unmap"))
			*flags |= VIOMMU_NOTIFY_UNMAP;
		else if (!strcmp(f, "deviotlb-unmap"))
			*flags |= VIOMMU_NOTIFY_DEVIOTLB_UNMAP;
		else {
			error_at(lc,
				 "flags: unknown flag '%s' (map, unmap, "
				 "deviotlb-unmap)",
				 f);
			ok = false;
		}
	}
	free(copy);
	if (ok && !*flags) {
		error_at(lc,
			 "flags: at least one of map, unmap, deviotlb-unmap");
		ok = false;
	}
	return ok;
}

static bool parse_bdf(const char *v, unsigned *bdf)
{
	unsigned bus, dev, fn;
	char tail;

	if (sscanf(v, "%2x:%2x.%1x%c", &bus, &dev, &fn, &tail) != 3 ||
	    strlen(v) != 7 || v[2] != ':' || v[5] != '.')
		return false;
	if (bus > 0xff || dev > 0x1f || fn > 7)
		return false;
	*bdf = bus << 8 | dev << 3 | fn;
	return true;
}

/* ---- names: devices and notifiers share one namespace ---- */

enum sym_kind {
	SYM_DEVICE,
	SYM_NOTIFIER
};

struct sym {
	char *name;
	enum sym_kind kind;
	bool live; /* notifier registered now */
	bool attached;
};

struct symtab {
	struct sym *v;
	size_t n, cap;
	uint64_t *domains;
	size_t ndomains, capdomains;
};

static struct sym *sym_find(struct symtab *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		if (!strcmp(st->v[i].name, name))
			return &st->v[i];
	return NULL;
}

static struct sym *sym_add(struct symtab *st, const char *name,
			   enum sym_kind kind)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct sym *nv = realloc(st->v, cap * sizeof(*nv));

		if (!nv)
			return NULL;
		st->v = nv;
		st->cap = cap;
	}
	st->v[st->n] =
		(struct sym){ strdup(name), kind, kind == SYM_NOTIFIER, false };
	return &st->v[st->n++];
}

static bool domain_known(struct symtab *st, uint64_t id)
{
	size_t i;

	for (i = 0; i < st->ndomains; i++)
		if (st->domains[i] == id)
			return true;
	return false;
}

static bool domain_add(struct symtab *st, uint64_t id)
{
	if (st->ndomains == st->capdomains) {
		size_t cap = st->capdomains ? st->capdomains * 2 : 16;
		uint64_t *nv = realloc(st->domains, cap * sizeof(*nv));

		if (!nv)
			return false;
		st->domains = nv;
		st->capdomains = cap;
	}
	st->domains[st->ndomains++] = id;
	return true;
}

static void symtab_free(struct symtab *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		free(st->v[i].name);
	free(st->v);
	free(st->domains);
}

/* ---- per-command checks ---- */

static bool is_vtd(const struct line_ctx *lc)
{
	return lc->sc->iommu == SC_IOMMU_VTD;
}

static void need_vtd(struct line_ctx *lc, const char *what)
{
	if (!is_vtd(lc))
		error_at(lc, "%s needs 'iommu vtd'", what);
}

static void need_positional(struct line_ctx *lc, const char *cmd, size_t n)
{
	if (lc->npos < n)
		error_at(lc, "%s: missing its argument", cmd);
	else if (lc->npos > n)
		error_at(lc, "%s: unexpected word '%s'", cmd, lc->pos[n]);
}

static const char *check_name_arg(struct line_ctx *lc, const char *cmd)
{
	need_positional(lc, cmd, 1);
	if (lc->npos < 1)
		return NULL;
	if (!valid_name(lc->pos[0])) {
		error_at(lc, "%s: '%s' is not a valid name ([A-Za-z0-9_.-]+)",
			 cmd, lc->pos[0]);
		return NULL;
	}
	return lc->pos[0];
}

static void check_domain_ref(struct line_ctx *lc, struct symtab *st,
			     uint64_t id, bool ok)
{
	if (ok && !domain_known(st, id))
		error_at(lc,
			 "domain %llu does not exist (create it with "
			 "'domain %llu' first)",
			 (unsigned long long)id, (unsigned long long)id);
}

static struct sym *device_ref(struct line_ctx *lc, struct symtab *st,
			      const char *name)
{
	struct sym *s;

	if (!name)
		return NULL;
	s = sym_find(st, name);
	if (!s)
		error_at(lc, "device '%s' does not exist", name);
	else if (s->kind != SYM_DEVICE)
		error_at(lc, "'%s' is a notifier, not a device", name);
	else
		return s;
	return NULL;
}

static uint64_t granule(const struct scenario *sc)
{
	return sc->iommu == SC_IOMMU_VIRTIO ? sc->page_size : 4 * KiB;
}

/* iova/size (and pa) of map and unmap: multiples, non-empty, no wrap. */
static void check_map_range(struct line_ctx *lc, struct sc_cmd *c, bool has_pa,
			    uint64_t align)
{
	const char *unit = is_vtd(lc) ? "page" : "page-size";

	if (c->size == 0)
		error_at(lc, "size must be greater than 0");
	if (c->iova % align || c->size % align || (has_pa && c->pa % align))
		error_at(lc, "iova, %ssize must be multiples of the %s 0x%llx",
			 has_pa ? "pa and " : "", unit,
			 (unsigned long long)align);
	if (c->size && c->iova + (c->size - 1) < c->iova)
		error_at(lc,
			 "iova + size goes past the end of the 64-bit space");
	else if (is_vtd(lc) && c->size &&
		 (c->iova + (c->size - 1)) >> lc->sc->aw)
		error_at(lc, "range goes beyond the %u-bit address width",
			 lc->sc->aw);
}

static void parse_iommu(struct line_ctx *lc, struct sc_cmd *c)
{
	struct scenario *sc = lc->sc;
	uint64_t v;
	bool present;

	need_positional(lc, "iommu", 1);
	if (lc->npos < 1)
		return;
	if (!strcmp(lc->pos[0], "vtd")) {
		sc->iommu = SC_IOMMU_VTD;
		sc->caching_mode = true;
		sc->device_iotlb = false;
		sc->aw = 48;
		get_onoff(lc, "caching-mode", &sc->caching_mode);
		get_onoff(lc, "device-iotlb", &sc->device_iotlb);
		if (get_num(lc, "aw", false, &v, &present) && present) {
			if (v != 39 && v != 48 && v != 57)
				error_at(lc,
					 "aw=%llu: vtd supports 39, 48 "
					 "or 57",
					 (unsigned long long)v);
			else
				sc->aw = (unsigned)v;
		}
	} else if (!strcmp(lc->pos[0], "virtio")) {
		sc->iommu = SC_IOMMU_VIRTIO;
		sc->page_size = 4 * KiB;
		sc->aw = 48;
		if (get_num(lc, "page-size", false, &v, &present) && present) {
			if (!v || (v & (v - 1)) || v < 4 * KiB)
				error_at(lc,
					 "page-size=0x%llx: a power of "
					 "two of at least 4K",
					 (unsigned long long)v);
			else
				sc->page_size = v;
		}
		if (get_num(lc, "aw", false, &v, &present) && present) {
			if (v < 12 || v > 64)
				error_at(lc, "aw=%llu: between 12 and 64",
					 (unsigned long long)v);
			else
				sc->aw = (unsigned)v;
		}
	} else {
		error_at(lc, "iommu: unknown type '%s' (vtd or virtio)",
			 lc->pos[0]);
	}
	(void)c;
}

static void parse_command(struct line_ctx *lc, struct symtab *st,
			  const char *word, struct sc_cmd *c)
{
	struct scenario *sc = lc->sc;
	const char *s;
	struct sym *sym;
	bool ok, present;
	uint64_t v;

	if (!strcmp(word, "ram")) {
		c->kind = SC_RAM;
		need_positional(lc, "ram", 0);
		if (get_num(lc, "size", true, &c->size, NULL)) {
			if (!c->size || c->size % (4 * KiB))
				error_at(lc, "ram size must be a non-zero "
					     "multiple of 4K");
			else
				sc->ram_size = c->size;
		}
	} else if (!strcmp(word, "domain")) {
		c->kind = SC_DOMAIN;
		need_positional(lc, "domain", 1);
		if (lc->npos >= 1) {
			if (!parse_number(lc->pos[0], &c->domain))
				error_at(lc, "domain: '%s' is not a number",
					 lc->pos[0]);
			else if (is_vtd(lc) && c->domain > 0xffff)
				error_at(lc,
					 "domain %llu: vtd domain ids are "
					 "16 bits",
					 (unsigned long long)c->domain);
			else if (!is_vtd(lc) && c->domain > 0xffffffffull)
				error_at(lc,
					 "domain %llu: virtio domain ids "
					 "are 32 bits",
					 (unsigned long long)c->domain);
			else if (domain_known(st, c->domain))
				error_at(lc, "domain %llu already exists",
					 (unsigned long long)c->domain);
			else
				domain_add(st, c->domain);
		}
	} else if (!strcmp(word, "device")) {
		c->kind = SC_DEVICE;
		s = check_name_arg(lc, "device");
		if (find_key(lc, "bdf")) {
			need_vtd(lc, "device bdf=");
			if (!parse_bdf(get_str(lc, "bdf", true), &c->bdf))
				error_at(lc,
					 "bdf=%s: expected BB:DD.F in hex "
					 "(device up to 1f, function up "
					 "to 7)",
					 get_str(lc, "bdf", true));
			c->opts |= SC_HAS_BDF;
			if (find_key(lc, "domain"))
				error_at(lc, "device: give domain= or bdf=, "
					     "not both");
		} else {
			ok = get_num(lc, "domain", true, &c->domain, NULL);
			check_domain_ref(lc, st, c->domain, ok);
		}
		if (s) {
			if (sym_find(st, s))
				error_at(lc, "name '%s' is already used", s);
			else if ((sym = sym_add(st, s, SYM_DEVICE)))
				sym->attached = true;
			c->name = strdup(s);
		}
	} else if (!strcmp(word, "attach")) {
		c->kind = SC_ATTACH;
		s = check_name_arg(lc, "attach");
		ok = get_num(lc, "domain", true, &c->domain, NULL);
		check_domain_ref(lc, st, c->domain, ok);
		if ((sym = device_ref(lc, st, s)))
			sym->attached = true;
		c->name = s ? strdup(s) : NULL;
	} else if (!strcmp(word, "detach")) {
		c->kind = SC_DETACH;
		s = check_name_arg(lc, "detach");
		device_ref(lc, st, s);
		c->name = s ? strdup(s) : NULL;
	} else if (!strcmp(word, "notifier")) {
		const char *name = check_name_arg(lc, "notifier");

		c->kind = SC_NOTIFIER;
		c->device = (char *)get_str(lc, "device", true);
		device_ref(lc, st, c->device);
		c->device = c->device ? strdup(c->device) : NULL;
		if ((s = get_str(lc, "flags", true)))
			parse_flags(lc, s, &c->flags);
		c->start = 0;
		c->last = UINT64_MAX;
		get_num(lc, "start", false, &c->start, NULL);
		get_num(lc, "end", false, &c->last, NULL);
		if (c->start > c->last)
			error_at(lc, "start=0x%llx is after end=0x%llx",
				 (unsigned long long)c->start,
				 (unsigned long long)c->last);
		if (name) {
			sym = sym_find(st, name);
			if (sym && (sym->kind != SYM_NOTIFIER || sym->live))
				error_at(lc, "name '%s' is already used", name);
			else if (sym)
				sym->live = true; /* a name used again */
			else
				sym_add(st, name, SYM_NOTIFIER);
			c->name = strdup(name);
		}
	} else if (!strcmp(word, "unregister") || !strcmp(word, "replay")) {
		bool unreg = word[0] == 'u';

		c->kind = unreg ? SC_UNREGISTER : SC_REPLAY;
		s = check_name_arg(lc, word);
		if (s) {
			sym = sym_find(st, s);
			if (!sym || sym->kind != SYM_NOTIFIER)
				error_at(lc, "notifier '%s' does not exist", s);
			else if (!sym->live)
				error_at(lc, "notifier '%s' was unregistered",
					 s);
			else if (unreg)
				sym->live = false;
			c->name = strdup(s);
		}
	} else if (!strcmp(word, "map") || !strcmp(word, "unmap")) {
		bool map = word[0] == 'm';
		uint64_t align = granule(sc);

		c->kind = map ? SC_MAP : SC_UNMAP;
		need_positional(lc, word, 0);
		ok = get_num(lc, "domain", true, &c->domain, NULL);
		check_domain_ref(lc, st, c->domain, ok);
		ok = get_num(lc, "iova", true, &c->iova, NULL);
		ok &= get_num(lc, "size", true, &c->size, NULL);
		if (map) {
			ok &= get_num(lc, "pa", true, &c->pa, NULL);
			get_perm(lc, "perm", true, &c->perm);
			c->page = 4 * KiB;
			if (get_num(lc, "page", false, &c->page, &present) &&
			    present) {
				need_vtd(lc, "map page=");
				if (c->page != 4 * KiB &&
				    c->page != 2048 * KiB &&
				    c->page != 1024 * 1024 * KiB) {
					error_at(lc,
						 "page=0x%llx: 4K, 2M or 1G",
						 (unsigned long long)c->page);
					ok = false;
				}
			}
			if (is_vtd(lc))
				align = c->page;
		}
		if (ok)
			check_map_range(lc, c, map,
					align > 4 * KiB ? align : 4 * KiB);
	} else if (!strcmp(word, "invalidate")) {
		c->kind = SC_INVALIDATE;
		need_vtd(lc, "invalidate");
		if (lc->npos == 1 && !strcmp(lc->pos[0], "global")) {
			c->opts |= SC_GLOBAL;
		} else {
			need_positional(lc, "invalidate", 0);
			ok = get_num(lc, "domain", true, &c->domain, NULL);
			check_domain_ref(lc, st, c->domain, ok);
			if (find_key(lc, "iova") || find_key(lc, "size")) {
				c->opts |= SC_HAS_RANGE;
				ok = get_num(lc, "iova", true, &c->iova, NULL);
				ok &= get_num(lc, "size", true, &c->size, NULL);
				if (ok &&
				    (!c->size || (c->size & (c->size - 1)) ||
				     c->size < 4 * KiB || c->iova % c->size))
					error_at(lc, "page-selective "
						     "invalidation: size must "
						     "be a power of two of at "
						     "least 4K and iova "
						     "aligned to it");
			}
		}
	} else if (!strcmp(word, "invalidate-devtlb")) {
		c->kind = SC_INVALIDATE_DEVTLB;
		need_vtd(lc, "invalidate-devtlb");
		if (is_vtd(lc) && !sc->device_iotlb)
			error_at(lc, "invalidate-devtlb needs 'iommu vtd "
				     "device-iotlb=on'");
		need_positional(lc, word, 0);
		c->device = (char *)get_str(lc, "device", true);
		device_ref(lc, st, c->device);
		c->device = c->device ? strdup(c->device) : NULL;
		ok = get_num(lc, "iova", true, &c->iova, NULL);
		ok &= get_num(lc, "size", true, &c->size, NULL);
		if (ok && (!c->size || (c->size & (c->size - 1)) ||
			   c->iova % c->size))
			error_at(lc, "size must be a power of two and iova "
				     "aligned to it");
	} else if (!strcmp(word, "translate")) {
		c->kind = SC_TRANSLATE;
		need_positional(lc, word, 0);
		c->device = (char *)get_str(lc, "device", true);
		device_ref(lc, st, c->device);
		c->device = c->device ? strdup(c->device) : NULL;
		get_num(lc, "iova", true, &c->iova, NULL);
		c->perm = VIOMMU_PERM_READ;
		get_perm(lc, "access", false, &c->perm);
	} else if (!strcmp(word, "pte")) {
		c->kind = SC_PTE;
		need_vtd(lc, "pte");
		need_positional(lc, word, 0);
		ok = get_num(lc, "domain", true, &c->domain, NULL);
		check_domain_ref(lc, st, c->domain, ok);
		get_num(lc, "iova", true, &c->iova, NULL);
		if (get_num(lc, "level", true, &v, NULL)) {
			if (v < 1 || v > 5 ||
			    (is_vtd(lc) && v > (sc->aw - 12) / 9))
				error_at(lc,
					 "level=%llu: between 1 and %u for "
					 "aw=%u",
					 (unsigned long long)v,
					 is_vtd(lc) ? (sc->aw - 12) / 9 : 5,
					 sc->aw);
			c->level = (unsigned)v;
		}
		s = get_str(lc, "value", true);
		if (s && !strcmp(s, "self"))
			c->opts |= SC_PTE_SELF;
		else if (s && !parse_number(s, &c->value))
			error_at(lc, "value=%s is not a number or 'self'", s);
		c->count = 1;
		if (get_num(lc, "count", false, &c->count, NULL) &&
		    (c->count < 1 || c->count > 512))
			error_at(lc, "count=%llu: between 1 and 512",
				 (unsigned long long)c->count);
	} else if (!strcmp(word, "image")) {
		c->kind = SC_IMAGE;
		need_vtd(lc, "image");
		need_positional(lc, word, 0);
		s = get_str(lc, "file", true);
		if (s) {
			const char *slash = strrchr(sc->file, '/');
			size_t dir = slash ? (size_t)(slash - sc->file) + 1 : 0;

			c->path = malloc(dir + strlen(s) + 1);
			if (c->path) {
				if (s[0] == '/')
					dir = 0;
				memcpy(c->path, sc->file, dir);
				strcpy(c->path + dir, s);
			}
		}
	} else if (!strcmp(word, "reg")) {
		need_vtd(lc, "reg");
		if (lc->npos != 1 || (strcmp(lc->pos[0], "write") &&
				      strcmp(lc->pos[0], "read"))) {
			error_at(lc, "reg: expected 'reg write' or 'reg read'");
			for (size_t i = 0; i < lc->nkv; i++)
				lc->kv[i].used = true;
			return;
		}
		c->kind = lc->pos[0][0] == 'w' ? SC_REG_WRITE : SC_REG_READ;
		get_num(lc, "offset", true, &c->iova, NULL);
		if (c->kind == SC_REG_WRITE)
			get_num(lc, "value", true, &c->value, NULL);
		c->width = 4;
		if (get_num(lc, "size", false, &v, &present) && present) {
			if (v != 4 && v != 8)
				error_at(lc, "size=%llu: 4 or 8",
					 (unsigned long long)v);
			else
				c->width = (unsigned)v;
		}
		if (c->iova % c->width)
			error_at(lc,
				 "offset 0x%llx is not aligned to the "
				 "access size %u",
				 (unsigned long long)c->iova, c->width);
	} else if (!strcmp(word, "qi")) {
		c->kind = SC_QI;
		need_vtd(lc, "qi");
		need_positional(lc, word, 0);
		get_num(lc, "lo", true, &c->value, NULL);
		get_num(lc, "hi", true, &c->value_hi, NULL);
	} else {
		error_at(lc, "unknown command '%s'", word);
		/* its keys are not "unknown" on top of that */
		for (size_t i = 0; i < lc->nkv; i++)
			lc->kv[i].used = true;
	}
}

/* Split @text into words; returns the count or -1 when too many. */
static int split_words(char *text, char **words)
{
	int n = 0;
	char *p = text;

	for (;;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			return n;
		if (n == MAX_WORDS)
			return -1;
		words[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
}

static int push_cmd(struct scenario *sc, size_t *cap, const struct sc_cmd *c)
{
	if (sc->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct sc_cmd *nv = realloc(sc->cmds, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		sc->cmds = nv;
		*cap = ncap;
	}
	sc->cmds[sc->n++] = *c;
	return 0;
}

static void free_cmd(struct sc_cmd *c)
{
	free(c->name);
	free(c->device);
	free(c->path);
}

int scenario_load(const char *file, struct scenario *sc, FILE *errors)
{
	struct line_ctx lc = { .sc = sc, .errors = errors };
	struct symtab st = { 0 };
	char *buf = NULL, *words[MAX_WORDS];
	size_t bufcap = 0, cap = 0, i;
	bool seen_iommu = false, seen_other = false;
	ssize_t len;
	FILE *f;

	memset(sc, 0, sizeof(*sc));
	sc->file = file;
	sc->ram_size = 4ull << 30;
	sc->iommu = SC_IOMMU_VTD;
	sc->caching_mode = true;
	sc->aw = 48;
	sc->page_size = 4 * KiB;
	f = fopen(file, "r");
	if (!f) {
		fprintf(errors, "%s: error: cannot open: %s\n", file,
			strerror(errno));
		return -1;
	}
	while ((len = getline(&buf, &bufcap, f)) >= 0) {
		struct sc_cmd c = { 0 };
		char *hash = strchr(buf, '#');
		int n;

		lc.line++;
		if (hash)
			*hash = '\0';
		if (strlen(buf) != (size_t)len && !hash) {
			error_at(&lc, "line contains a NUL byte");
			continue;
		}
		n = split_words(buf, words);
		if (n == 0)
			continue;
		if (n < 0) {
			error_at(&lc, "too many words (at most %d)", MAX_WORDS);
			continue;
		}
		lc.nkv = lc.npos = 0;
		for (i = 1; i < (size_t)n; i++) {
			char *eq = strchr(words[i], '=');

			if (!eq) {
				if (lc.nkv) {
					error_at(&lc,
						 "'%s': expected "
						 "key=value",
						 words[i]);
					continue;
				}
				lc.pos[lc.npos++] = words[i];
				continue;
			}
			*eq = '\0';
			if (!*words[i] || !eq[1]) {
				error_at(&lc, "'%s=%s': empty key or value",
					 words[i], eq + 1);
				continue;
			}
			bool dup = false;
			for (size_t k = 0; k < lc.nkv; k++)
				dup |= !strcmp(lc.kv[k].key, words[i]);
			if (dup) {
				error_at(&lc, "key %s= given twice", words[i]);
				continue;
			}
			lc.kv[lc.nkv++] =
				(struct kv){ words[i], eq + 1, false };
		}
		c.line = lc.line;
		if (!strcmp(words[0], "iommu")) {
			c.kind = SC_IOMMU;
			if (seen_iommu)
				error_at(&lc, "iommu given twice");
			else if (seen_other)
				error_at(&lc, "iommu must be the first "
					      "command");
			seen_iommu = true;
			parse_iommu(&lc, &c);
		} else {
			if (!seen_iommu && !seen_other)
				error_at(&lc, "the first command must be "
					      "'iommu vtd' or 'iommu virtio'");
			if (!strcmp(words[0], "ram") && seen_other)
				error_at(&lc, "ram must come right after "
					      "iommu, before anything uses "
					      "guest memory");
			seen_other = true;
			parse_command(&lc, &st, words[0], &c);
		}
		for (i = 0; i < lc.nkv; i++)
			if (!lc.kv[i].used)
				error_at(&lc, "unknown key %s= for %s",
					 lc.kv[i].key, words[0]);
		if (push_cmd(sc, &cap, &c)) {
			free_cmd(&c);
			error_at(&lc, "out of memory");
			break;
		}
	}
	if (ferror(f)) {
		fprintf(errors, "%s: error: read failed\n", file);
		lc.nerr++;
	}
	if (!seen_iommu && !lc.nerr) {
		fprintf(errors, "%s:1: error: no 'iommu' command\n", file);
		lc.nerr++;
	}
	free(buf);
	fclose(f);
	symtab_free(&st);
	return lc.nerr;
}

void scenario_free(struct scenario *sc)
{
	size_t i;

	for (i = 0; i < sc->n; i++)
		free_cmd(&sc->cmds[i]);
	free(sc->cmds);
	sc->cmds = NULL;
	sc->n = 0;
}
