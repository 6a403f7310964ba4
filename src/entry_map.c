// SPDX-License-Identifier: MIT
/*
 * entry_map.c - the translations an address space holds, as a B+tree.
 *
 * Entries are naturally aligned powers of two that never overlap, so
 * ordering them by IOVA orders them by their ranges too, and the only entry
 * that can cover an address is the one with the greatest IOVA at or below it.
 * A B+tree keeps them in that order with O(log n) updates and lookups, and
 * its linked leaves let a cursor walk them in O(1) per step.
 *
 * Memory is what matters most: an address space may hold millions of 4 KiB
 * translations.  A leaf therefore stores its entries in parallel arrays, with
 * the size reduced to its log2 and packed with the permission into 16 bits:
 * 8 + 8 + 2 = 18 bytes an entry, and only 16 bytes of header per leaf.
 *
 * Sizes.  A leaf holds 64 entries: its IOVAs fill 8 cache lines, which a
 * binary search touches about 4 of, and an insert or remove moves at most
 * about 1 KiB.  An inner node holds 32 children: its keys fill 4 cache lines,
 * and a tree of 1,000,000 entries is 4 levels deep when they were mapped in
 * order, 5 in random order.  Inner nodes are under 2% of the memory.
 *
 * Fill.  Every node but the root holds at least 1/8 of its maximum.  That
 * bound is what keeps the tree O(log n) deep whatever a guest does (a node
 * left with a single entry after an "append" split could otherwise be
 * repeated into chains of near-empty nodes); 1/8 rather than the textbook 1/2
 * lets splits be uneven:
 *  - an insert past the last entry of a full node (a guest mapping a range in
 *    increasing order) keeps 57 entries on the left and moves only 7 to the
 *    new right node, where the following inserts go: sequential mapping
 *    leaves nodes 57/64 full, about 20.8 bytes an entry all included;
 *  - an insert before the first entry (decreasing order; only the first leaf
 *    of the map can see one) does the mirror image;
 *  - any other insert splits in the middle, so random inserts leave nodes
 *    about 70% full.
 * A remove merges the node it shrank with a neighbour (same parent) when the
 * two fit in 3/4 of a node, and when the node falls below 1/8 and cannot
 * merge it takes entries from a neighbour.  So a long run of inserts and
 * removes neither leaks nodes nor leaves the tree sparse, and merged nodes
 * keep room for 1/4 more before they split again (no merge/split ping-pong).
 *
 * Keys.  An inner node keeps, for each child, the exact lowest IOVA in that
 * child's subtree (key[0] included).  Exact keys matter: after the lowest
 * entry of a subtree is removed, a larger entry may be mapped below its old
 * key in the left neighbour, covering addresses at and past that key; a
 * stale key would send a seek for such an address to the wrong subtree.
 *
 * Not thread-safe; any insert or remove invalidates every cursor.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entry_map.h"

#define EMAP_LEAF_MAX 64
#define EMAP_LEAF_MIN (EMAP_LEAF_MAX / 8)
#define EMAP_LEAF_MERGE (EMAP_LEAF_MAX * 3 / 4)

#define EMAP_INNER_MAX 32
#define EMAP_INNER_MIN (EMAP_INNER_MAX / 8)
#define EMAP_INNER_MERGE (EMAP_INNER_MAX * 3 / 4)

/*
 * A tree of height h >= 2 has a root with at least 2 children, inner nodes
 * with at least EMAP_INNER_MIN (4) and leaves with at least EMAP_LEAF_MIN (8)
 * entries: at least 2 * 4^(h-2) * 8 = 4^h entries.  Entries do not overlap,
 * so there are at most 2^64 of them, and h <= 32.
 */
#define EMAP_MAX_HEIGHT 32

_Static_assert(EMAP_LEAF_MIN >= 2 && EMAP_INNER_MIN >= 2,
	       "a non-root node must never empty in a single remove");
_Static_assert(EMAP_LEAF_MERGE >= 2 * EMAP_LEAF_MIN &&
		       EMAP_INNER_MERGE >= 2 * EMAP_INNER_MIN,
	       "nodes that cannot merge must share enough to both reach MIN");
_Static_assert(EMAP_LEAF_MAX <= UINT16_MAX && EMAP_INNER_MAX <= UINT16_MAX,
	       "node counts are 16 bits");

/* meta: bits 0-6 the order (log2 of the size, 0..64), bits 7-8 the perm. */
#define EMAP_META_ORDER 0x7fu
#define EMAP_META_PERM_SHIFT 7

/* What leaves and inner nodes start with; the cursor points at it. */
struct viommu__emap_node {
	uint16_t nr; /* entries in a leaf, children in an inner node */
};

struct emap_leaf {
	struct viommu__emap_node hdr;
	struct emap_leaf *next; /* the leaf with the following entries */
	uint64_t iova[EMAP_LEAF_MAX];
	uint16_t meta[EMAP_LEAF_MAX];
	uint64_t pa[EMAP_LEAF_MAX];
};

struct emap_inner {
	struct viommu__emap_node hdr;
	uint64_t key[EMAP_INNER_MAX]; /* lowest IOVA under child[i] */
	struct viommu__emap_node *child[EMAP_INNER_MAX];
};

/* The inner nodes from the root down to a leaf, and the child taken in each. */
struct emap_path {
	struct emap_inner *node[EMAP_MAX_HEIGHT];
	unsigned idx[EMAP_MAX_HEIGHT];
};

static struct emap_leaf *to_leaf(struct viommu__emap_node *n)
{
	return (struct emap_leaf *)n;
}

static struct emap_inner *to_inner(struct viommu__emap_node *n)
{
	return (struct emap_inner *)n;
}

/* ---- entry encoding ---- */

static uint16_t meta_pack(uint64_t addr_mask, unsigned perm)
{
	/* addr_mask is 2^order - 1: its trailing ones count the order */
	unsigned order = addr_mask == UINT64_MAX ?
				 64 :
				 (unsigned)__builtin_ctzll(~addr_mask);

	return (uint16_t)(order | (perm & VIOMMU_PERM_RW)
					  << EMAP_META_PERM_SHIFT);
}

static uint64_t meta_mask(uint16_t meta)
{
	unsigned order = meta & EMAP_META_ORDER;

	return order >= 64 ? UINT64_MAX : (UINT64_C(1) << order) - 1;
}

static unsigned meta_perm(uint16_t meta)
{
	return (meta >> EMAP_META_PERM_SHIFT) & VIOMMU_PERM_RW;
}

/* Last address of entry @slot: iova | mask, as iova is aligned to the size. */
static uint64_t leaf_last(const struct emap_leaf *leaf, unsigned slot)
{
	return leaf->iova[slot] | meta_mask(leaf->meta[slot]);
}

/* ---- searching sorted keys ---- */

/* Number of keys in @a[0..@n) that are <= @key (the keys are sorted). */
static unsigned count_le(const uint64_t *a, unsigned n, uint64_t key)
{
	unsigned lo = 0;

	while (n > 0) {
		unsigned half = n / 2;

		if (a[lo + half] <= key) {
			lo += half + 1;
			n -= half + 1;
		} else {
			n = half;
		}
	}
	return lo;
}

/* Number of keys in @a[0..@n) that are < @key. */
static unsigned count_lt(const uint64_t *a, unsigned n, uint64_t key)
{
	return key == 0 ? 0 : count_le(a, n, key - 1);
}

/*
 * The child of @in whose subtree holds the greatest IOVA <= @key; the first
 * child when every IOVA is above @key.
 */
static unsigned inner_pick(const struct emap_inner *in, uint64_t key)
{
	unsigned n = count_le(in->key, in->hdr.nr, key);

	return n ? n - 1 : 0;
}

/* Descend to the leaf for @key, recording the way in @path. */
static struct emap_leaf *descend(const struct viommu__emap *map, uint64_t key,
				 struct emap_path *path)
{
	struct viommu__emap_node *n = map->root;
	unsigned level;

	assert(map->height >= 1 && map->height <= EMAP_MAX_HEIGHT);
	for (level = 0; level + 1 < map->height; level++) {
		struct emap_inner *in = to_inner(n);
		unsigned i = inner_pick(in, key);

		path->node[level] = in;
		path->idx[level] = i;
		n = in->child[i];
	}
	return to_leaf(n);
}

/* Lowest IOVA under @n, a node at @level (the root is 0) of @map. */
static uint64_t node_min(const struct viommu__emap *map,
			 struct viommu__emap_node *n, unsigned level)
{
	if (level + 1 == map->height)
		return to_leaf(n)->iova[0];
	return to_inner(n)->key[0];
}

/*
 * The lowest IOVA of the leaf at the end of @path became @min: fix the keys
 * above it, up to the first ancestor where it is not the leftmost child.
 */
static void path_set_min(const struct viommu__emap *map, struct emap_path *path,
			 uint64_t min)
{
	unsigned level = map->height - 1;

	while (level-- > 0) {
		path->node[level]->key[path->idx[level]] = min;
		if (path->idx[level] != 0)
			break;
	}
}

/* ---- node allocation ---- */

static struct emap_leaf *leaf_alloc(struct viommu__emap *map)
{
	struct emap_leaf *leaf = map->spare;

	if (leaf)
		map->spare = NULL;
	else
		leaf = malloc(sizeof(*leaf));
	if (!leaf)
		return NULL;
	leaf->hdr.nr = 0;
	leaf->next = NULL;
	map->bytes += sizeof(*leaf);
	return leaf;
}

/*
 * One freed leaf is kept for the next allocation: a map that empties and
 * fills again (a single entry mapped and unmapped) costs no malloc, and a
 * leaf is too big for the allocator's fast per-thread caches.  It is not
 * counted in @bytes, which counts the nodes holding entries.
 */
static void leaf_free(struct viommu__emap *map, struct emap_leaf *leaf)
{
	map->bytes -= sizeof(*leaf);
	if (!map->spare) {
		map->spare = leaf;
		return;
	}
	free(leaf);
}

static struct emap_inner *inner_alloc(struct viommu__emap *map)
{
	struct emap_inner *in = malloc(sizeof(*in));

	if (!in)
		return NULL;
	in->hdr.nr = 0;
	map->bytes += sizeof(*in);
	return in;
}

static void inner_free(struct viommu__emap *map, struct emap_inner *in)
{
	map->bytes -= sizeof(*in);
	free(in);
}

/* ---- moving entries and children around ---- */

/* Copy @n entries from @src at @si to @dst at @di (distinct leaves). */
static void leaf_copy(struct emap_leaf *dst, unsigned di,
		      const struct emap_leaf *src, unsigned si, unsigned n)
{
	memcpy(&dst->iova[di], &src->iova[si], n * sizeof(dst->iova[0]));
	memcpy(&dst->meta[di], &src->meta[si], n * sizeof(dst->meta[0]));
	memcpy(&dst->pa[di], &src->pa[si], n * sizeof(dst->pa[0]));
}

/* Move entries [@from, nr) of @leaf to start at @to, inside the leaf. */
static void leaf_shift(struct emap_leaf *leaf, unsigned from, unsigned to)
{
	unsigned n = leaf->hdr.nr - from;

	memmove(&leaf->iova[to], &leaf->iova[from], n * sizeof(leaf->iova[0]));
	memmove(&leaf->meta[to], &leaf->meta[from], n * sizeof(leaf->meta[0]));
	memmove(&leaf->pa[to], &leaf->pa[from], n * sizeof(leaf->pa[0]));
}

static void leaf_insert_at(struct emap_leaf *leaf, unsigned pos, uint64_t iova,
			   uint16_t meta, uint64_t pa)
{
	assert(leaf->hdr.nr < EMAP_LEAF_MAX && pos <= leaf->hdr.nr);
	leaf_shift(leaf, pos, pos + 1);
	leaf->iova[pos] = iova;
	leaf->meta[pos] = meta;
	leaf->pa[pos] = pa;
	leaf->hdr.nr++;
}

static void leaf_delete_at(struct emap_leaf *leaf, unsigned pos)
{
	assert(pos < leaf->hdr.nr);
	leaf_shift(leaf, pos + 1, pos);
	leaf->hdr.nr--;
}

static void inner_copy(struct emap_inner *dst, unsigned di,
		       const struct emap_inner *src, unsigned si, unsigned n)
{
	memcpy(&dst->key[di], &src->key[si], n * sizeof(dst->key[0]));
	memcpy(&dst->child[di], &src->child[si], n * sizeof(dst->child[0]));
}

static void inner_shift(struct emap_inner *in, unsigned from, unsigned to)
{
	unsigned n = in->hdr.nr - from;

	memmove(&in->key[to], &in->key[from], n * sizeof(in->key[0]));
	memmove(&in->child[to], &in->child[from], n * sizeof(in->child[0]));
}

static void inner_insert_at(struct emap_inner *in, unsigned pos, uint64_t key,
			    struct viommu__emap_node *child)
{
	assert(in->hdr.nr < EMAP_INNER_MAX && pos <= in->hdr.nr);
	inner_shift(in, pos, pos + 1);
	in->key[pos] = key;
	in->child[pos] = child;
	in->hdr.nr++;
}

static void inner_delete_at(struct emap_inner *in, unsigned pos)
{
	assert(pos < in->hdr.nr);
	inner_shift(in, pos + 1, pos);
	in->hdr.nr--;
}

/* ---- splitting ---- */

/*
 * How many of the @max + 1 items (a full node plus one inserted at @pos) stay
 * in the left node.  Inserts at either end are taken as the start of a run
 * going that way, so the other node is kept nearly full; both nodes keep at
 * least @min.
 */
static unsigned split_point(unsigned max, unsigned min, unsigned pos)
{
	if (pos == max)
		return max + 1 - min;
	if (pos == 0)
		return min;
	return (max + 1) / 2;
}

/* Split the full @leaf into itself and the empty @right, inserting at @pos. */
static void leaf_split_insert(struct emap_leaf *leaf, struct emap_leaf *right,
			      unsigned pos, uint64_t iova, uint16_t meta,
			      uint64_t pa)
{
	unsigned s = split_point(EMAP_LEAF_MAX, EMAP_LEAF_MIN, pos);

	assert(leaf->hdr.nr == EMAP_LEAF_MAX && right->hdr.nr == 0);
	if (pos < s) {
		/* The new entry is one of the s on the left. */
		leaf_copy(right, 0, leaf, s - 1, EMAP_LEAF_MAX - (s - 1));
		right->hdr.nr = (uint16_t)(EMAP_LEAF_MAX - (s - 1));
		leaf->hdr.nr = (uint16_t)(s - 1);
		leaf_insert_at(leaf, pos, iova, meta, pa);
	} else {
		leaf_copy(right, 0, leaf, s, EMAP_LEAF_MAX - s);
		right->hdr.nr = (uint16_t)(EMAP_LEAF_MAX - s);
		leaf->hdr.nr = (uint16_t)s;
		leaf_insert_at(right, pos - s, iova, meta, pa);
	}
	right->next = leaf->next;
	leaf->next = right;
}

/* Same for an inner node and a (key, child) pair. */
static void inner_split_insert(struct emap_inner *in, struct emap_inner *right,
			       unsigned pos, uint64_t key,
			       struct viommu__emap_node *child)
{
	unsigned s = split_point(EMAP_INNER_MAX, EMAP_INNER_MIN, pos);

	assert(in->hdr.nr == EMAP_INNER_MAX && right->hdr.nr == 0);
	if (pos < s) {
		inner_copy(right, 0, in, s - 1, EMAP_INNER_MAX - (s - 1));
		right->hdr.nr = (uint16_t)(EMAP_INNER_MAX - (s - 1));
		in->hdr.nr = (uint16_t)(s - 1);
		inner_insert_at(in, pos, key, child);
	} else {
		inner_copy(right, 0, in, s, EMAP_INNER_MAX - s);
		right->hdr.nr = (uint16_t)(EMAP_INNER_MAX - s);
		in->hdr.nr = (uint16_t)s;
		inner_insert_at(right, pos - s, key, child);
	}
}

/* ---- merging and rebalancing ---- */

/* Move all of @right's entries to the end of @left and unlink @right. */
static void leaf_merge(struct emap_leaf *left, struct emap_leaf *right)
{
	assert(left->hdr.nr + right->hdr.nr <= EMAP_LEAF_MAX);
	leaf_copy(left, left->hdr.nr, right, 0, right->hdr.nr);
	left->hdr.nr = (uint16_t)(left->hdr.nr + right->hdr.nr);
	left->next = right->next;
}

/* Even out two neighbouring leaves; returns the right one's new lowest IOVA. */
static uint64_t leaf_balance(struct emap_leaf *left, struct emap_leaf *right)
{
	unsigned total = left->hdr.nr + right->hdr.nr;
	unsigned want = total / 2;

	if (left->hdr.nr > want) {
		unsigned n = left->hdr.nr - want;

		leaf_shift(right, 0, n);
		leaf_copy(right, 0, left, want, n);
	} else if (left->hdr.nr < want) {
		unsigned n = want - left->hdr.nr;

		leaf_copy(left, left->hdr.nr, right, 0, n);
		leaf_shift(right, n, 0);
	}
	left->hdr.nr = (uint16_t)want;
	right->hdr.nr = (uint16_t)(total - want);
	return right->iova[0];
}

static void inner_merge(struct emap_inner *left, struct emap_inner *right)
{
	assert(left->hdr.nr + right->hdr.nr <= EMAP_INNER_MAX);
	inner_copy(left, left->hdr.nr, right, 0, right->hdr.nr);
	left->hdr.nr = (uint16_t)(left->hdr.nr + right->hdr.nr);
}

static uint64_t inner_balance(struct emap_inner *left, struct emap_inner *right)
{
	unsigned total = left->hdr.nr + right->hdr.nr;
	unsigned want = total / 2;

	if (left->hdr.nr > want) {
		unsigned n = left->hdr.nr - want;

		inner_shift(right, 0, n);
		inner_copy(right, 0, left, want, n);
	} else if (left->hdr.nr < want) {
		unsigned n = want - left->hdr.nr;

		inner_copy(left, left->hdr.nr, right, 0, n);
		inner_shift(right, n, 0);
	}
	left->hdr.nr = (uint16_t)want;
	right->hdr.nr = (uint16_t)(total - want);
	return right->key[0];
}

/*
 * The leaf child @i of @parent just lost an entry.  Merge it with a
 * neighbour if the two fit in 3/4 of a leaf; else, if it fell below the
 * minimum, even it out with a neighbour.  Keys stay exact: a merge or an
 * exchange never changes the lowest IOVA of the left node of the pair.
 * Returns true when @parent lost a child.
 */
static bool leaf_rebalance(struct viommu__emap *map, struct emap_inner *parent,
			   unsigned i)
{
	struct emap_leaf *leaf = to_leaf(parent->child[i]);
	struct emap_leaf *left = NULL, *right = NULL;

	if (i > 0) {
		left = to_leaf(parent->child[i - 1]);
		if (left->hdr.nr + leaf->hdr.nr <= EMAP_LEAF_MERGE) {
			leaf_merge(left, leaf);
			inner_delete_at(parent, i);
			leaf_free(map, leaf);
			return true;
		}
	}
	if (i + 1 < parent->hdr.nr) {
		right = to_leaf(parent->child[i + 1]);
		if (leaf->hdr.nr + right->hdr.nr <= EMAP_LEAF_MERGE) {
			leaf_merge(leaf, right);
			inner_delete_at(parent, i + 1);
			leaf_free(map, right);
			return true;
		}
	}
	if (leaf->hdr.nr >= EMAP_LEAF_MIN)
		return false;
	if (left)
		parent->key[i] = leaf_balance(left, leaf);
	else if (right)
		parent->key[i + 1] = leaf_balance(leaf, right);
	else
		assert(!"a non-root leaf without a sibling");
	return false;
}

/* Same for the inner child @i of @parent, which just lost a child. */
static bool inner_rebalance(struct viommu__emap *map, struct emap_inner *parent,
			    unsigned i)
{
	struct emap_inner *in = to_inner(parent->child[i]);
	struct emap_inner *left = NULL, *right = NULL;

	if (i > 0) {
		left = to_inner(parent->child[i - 1]);
		if (left->hdr.nr + in->hdr.nr <= EMAP_INNER_MERGE) {
			inner_merge(left, in);
			inner_delete_at(parent, i);
			inner_free(map, in);
			return true;
		}
	}
	if (i + 1 < parent->hdr.nr) {
		right = to_inner(parent->child[i + 1]);
		if (in->hdr.nr + right->hdr.nr <= EMAP_INNER_MERGE) {
			inner_merge(in, right);
			inner_delete_at(parent, i + 1);
			inner_free(map, right);
			return true;
		}
	}
	if (in->hdr.nr >= EMAP_INNER_MIN)
		return false;
	if (left)
		parent->key[i] = inner_balance(left, in);
	else if (right)
		parent->key[i + 1] = inner_balance(in, right);
	else
		assert(!"a non-root inner node without a sibling");
	return false;
}

/*
 * The leaf at the end of @path lost an entry: rebalance it, and each
 * ancestor that lost a child in turn, then drop roots with a single child.
 */
static void rebalance(struct viommu__emap *map, struct emap_path *path)
{
	unsigned level = map->height - 1;
	bool leaf = true;

	while (level > 0) {
		struct emap_inner *parent = path->node[level - 1];
		unsigned i = path->idx[level - 1];
		bool merged = leaf ? leaf_rebalance(map, parent, i) :
				     inner_rebalance(map, parent, i);

		if (!merged)
			break;
		leaf = false;
		level--;
	}
	while (map->height > 1 && map->root->nr == 1) {
		struct emap_inner *root = to_inner(map->root);

		map->root = root->child[0];
		map->height--;
		inner_free(map, root);
	}
}

/* ---- optional self-check, for debugging this file ---- */

#ifdef VIOMMU_EMAP_DEBUG
/*
 * Build with -DVIOMMU_EMAP_DEBUG to verify the whole tree after every
 * change (O(n) each): order, no overlap, exact keys, fill, leaf links, count
 * and bytes.
 */
struct emap_check {
	size_t count, bytes;
	struct emap_leaf *expect; /* the leaf the previous one links to */
	bool have_last;
	uint64_t last; /* last address of the previous entry */
};

static void check_node(const struct viommu__emap *map,
		       struct viommu__emap_node *n, unsigned level,
		       struct emap_check *st)
{
	unsigned i;

	if (level > 0) {
		unsigned min = level + 1 == map->height ? EMAP_LEAF_MIN :
							  EMAP_INNER_MIN;
		assert(n->nr >= min);
	}
	if (level + 1 == map->height) {
		struct emap_leaf *leaf = to_leaf(n);

		assert(n->nr >= 1 && n->nr <= EMAP_LEAF_MAX);
		assert(!st->expect || st->expect == leaf);
		for (i = 0; i < n->nr; i++) {
			uint64_t mask = meta_mask(leaf->meta[i]);

			assert((leaf->iova[i] & mask) == 0);
			assert(!st->have_last || leaf->iova[i] > st->last);
			st->have_last = true;
			st->last = leaf->iova[i] | mask;
		}
		st->count += n->nr;
		st->bytes += sizeof(*leaf);
		st->expect = leaf->next;
		return;
	}
	assert(n->nr >= (level ? 1 : 2) && n->nr <= EMAP_INNER_MAX);
	st->bytes += sizeof(struct emap_inner);
	for (i = 0; i < n->nr; i++) {
		struct viommu__emap_node *c = to_inner(n)->child[i];

		assert(to_inner(n)->key[i] == node_min(map, c, level + 1));
		check_node(map, c, level + 1, st);
	}
}

static void emap_check(const struct viommu__emap *map)
{
	struct emap_check st = { 0 };

	if (!map->root) {
		assert(map->height == 0 && map->count == 0 && map->bytes == 0);
		return;
	}
	check_node(map, map->root, 0, &st);
	assert(st.expect == NULL);
	assert(st.count == map->count && st.bytes == map->bytes);
}
#else
static void emap_check(const struct viommu__emap *map)
{
	(void)map;
}
#endif

/* ---- the interface ---- */

void viommu__emap_init(struct viommu__emap *map)
{
	map->root = NULL;
	map->height = 0;
	map->count = 0;
	map->bytes = 0;
	map->spare = NULL;
}

/* Free the subtree under @n, a node at @level; recursion as deep as the tree. */
static void free_subtree(struct viommu__emap *map, struct viommu__emap_node *n,
			 unsigned level)
{
	unsigned i;

	if (level + 1 == map->height) {
		leaf_free(map, to_leaf(n));
		return;
	}
	for (i = 0; i < n->nr; i++)
		free_subtree(map, to_inner(n)->child[i], level + 1);
	inner_free(map, to_inner(n));
}

void viommu__emap_destroy(struct viommu__emap *map)
{
	if (map->root)
		free_subtree(map, map->root, 0);
	assert(map->bytes == 0);
	free(map->spare);
	viommu__emap_init(map);
}

/* Insert into an empty map: a single leaf becomes the root. */
static int insert_first(struct viommu__emap *map, uint64_t iova, uint16_t meta,
			uint64_t pa)
{
	struct emap_leaf *leaf = leaf_alloc(map);

	if (!leaf)
		return -ENOMEM;
	leaf_insert_at(leaf, 0, iova, meta, pa);
	map->root = &leaf->hdr;
	map->height = 1;
	map->count = 1;
	return 0;
}

/*
 * The nodes an insert may need, allocated before the tree is touched so an
 * allocation failure leaves the map as it was.
 */
struct emap_spare {
	struct emap_leaf *leaf;
	struct emap_inner *inner[EMAP_MAX_HEIGHT];
	unsigned nr_inner, used_inner;
};

static void spare_release(struct viommu__emap *map, struct emap_spare *sp)
{
	if (sp->leaf)
		leaf_free(map, sp->leaf);
	while (sp->nr_inner > sp->used_inner)
		inner_free(map, sp->inner[--sp->nr_inner]);
}

/*
 * Allocate what inserting into @leaf at the end of @path takes: a leaf if it
 * is full, an inner node for each full ancestor above it, and a new root if
 * they all are.
 */
static int spare_alloc(struct viommu__emap *map, const struct emap_path *path,
		       const struct emap_leaf *leaf, struct emap_spare *sp)
{
	unsigned level = map->height - 1;
	unsigned need = 0;

	sp->leaf = NULL;
	sp->nr_inner = sp->used_inner = 0;
	if (leaf->hdr.nr < EMAP_LEAF_MAX)
		return 0;
	while (level > 0 && path->node[level - 1]->hdr.nr == EMAP_INNER_MAX) {
		need++;
		level--;
	}
	if (level == 0)
		need++; /* the root splits too: a new root above it */
	assert(need <= EMAP_MAX_HEIGHT);

	sp->leaf = leaf_alloc(map);
	if (!sp->leaf)
		return -ENOMEM;
	while (sp->nr_inner < need) {
		struct emap_inner *in = inner_alloc(map);

		if (!in) {
			spare_release(map, sp);
			return -ENOMEM;
		}
		sp->inner[sp->nr_inner++] = in;
	}
	return 0;
}

static struct emap_inner *spare_inner(struct emap_spare *sp)
{
	assert(sp->used_inner < sp->nr_inner);
	return sp->inner[sp->used_inner++];
}

int viommu__emap_insert(struct viommu__emap *map, const struct viommu_entry *e)
{
	uint16_t meta = meta_pack(e->addr_mask, e->perm);
	struct viommu__emap_node *child;
	struct emap_spare spare;
	struct emap_path path;
	struct emap_leaf *leaf;
	unsigned level, pos;
	uint64_t key;

	if (!map->root)
		return insert_first(map, e->iova, meta, e->translated_addr);

	leaf = descend(map, e->iova, &path);
	pos = count_lt(leaf->iova, leaf->hdr.nr, e->iova);
	if (spare_alloc(map, &path, leaf, &spare))
		return -ENOMEM;

	/* Only the leftmost leaf can get a new lowest entry. */
	if (pos == 0)
		path_set_min(map, &path, e->iova);
	map->count++;

	if (leaf->hdr.nr < EMAP_LEAF_MAX) {
		leaf_insert_at(leaf, pos, e->iova, meta, e->translated_addr);
		emap_check(map);
		return 0;
	}

	/* Split the leaf, then each full ancestor, inserting the new node. */
	leaf_split_insert(leaf, spare.leaf, pos, e->iova, meta,
			  e->translated_addr);
	child = &spare.leaf->hdr;
	key = spare.leaf->iova[0];
	spare.leaf = NULL;
	for (level = map->height - 1; level > 0; level--) {
		struct emap_inner *parent = path.node[level - 1];
		unsigned at = path.idx[level - 1] + 1;
		struct emap_inner *right;

		if (parent->hdr.nr < EMAP_INNER_MAX) {
			inner_insert_at(parent, at, key, child);
			child = NULL;
			break;
		}
		right = spare_inner(&spare);
		inner_split_insert(parent, right, at, key, child);
		child = &right->hdr;
		key = right->key[0];
	}
	if (child) {
		/* The root split: grow the tree by one level. */
		struct emap_inner *root = spare_inner(&spare);

		root->key[0] = node_min(map, map->root, 0);
		root->child[0] = map->root;
		root->key[1] = key;
		root->child[1] = child;
		root->hdr.nr = 2;
		map->root = &root->hdr;
		map->height++;
		assert(map->height <= EMAP_MAX_HEIGHT);
	}
	assert(spare.used_inner == spare.nr_inner);
	emap_check(map);
	return 0;
}

int viommu__emap_remove(struct viommu__emap *map, uint64_t iova)
{
	struct emap_path path;
	struct emap_leaf *leaf;
	unsigned slot;

	if (!map->root)
		return -ENOENT;
	leaf = descend(map, iova, &path);
	slot = count_lt(leaf->iova, leaf->hdr.nr, iova);
	if (slot == leaf->hdr.nr || leaf->iova[slot] != iova)
		return -ENOENT;

	leaf_delete_at(leaf, slot);
	map->count--;
	if (map->height == 1) {
		if (leaf->hdr.nr == 0) {
			leaf_free(map, leaf);
			map->root = NULL;
			map->height = 0;
		}
		emap_check(map);
		return 0;
	}

	/* A non-root leaf holds EMAP_LEAF_MIN >= 2 entries: one is left. */
	assert(leaf->hdr.nr > 0);
	if (slot == 0)
		path_set_min(map, &path, leaf->iova[0]);
	rebalance(map, &path);
	emap_check(map);
	return 0;
}

bool viommu__emap_seek(const struct viommu__emap *map, uint64_t addr,
		       struct viommu__emap_cursor *c)
{
	struct viommu__emap_node *n = map->root;
	struct emap_leaf *leaf;
	unsigned level, le;

	c->leaf = NULL;
	c->slot = 0;
	if (!n)
		return false;
	for (level = 0; level + 1 < map->height; level++) {
		struct emap_inner *in = to_inner(n);

		n = in->child[inner_pick(in, addr)];
	}
	leaf = to_leaf(n);

	/*
	 * The keys led to the leaf holding the greatest IOVA <= addr, if any;
	 * that entry is the only one that can cover addr.  Otherwise the answer
	 * is the entry after it, maybe the first of the next leaf.
	 */
	le = count_le(leaf->iova, leaf->hdr.nr, addr);
	if (le > 0 && leaf_last(leaf, le - 1) >= addr) {
		c->leaf = &leaf->hdr;
		c->slot = le - 1;
		return true;
	}
	if (le == leaf->hdr.nr) {
		leaf = leaf->next;
		le = 0;
		if (!leaf)
			return false;
	}
	c->leaf = &leaf->hdr;
	c->slot = le;
	return true;
}

void viommu__emap_get(const struct viommu__emap_cursor *c,
		      struct viommu_entry *out)
{
	const struct emap_leaf *leaf = to_leaf(c->leaf);
	uint16_t meta;

	assert(leaf && c->slot < leaf->hdr.nr);
	meta = leaf->meta[c->slot];
	out->iova = leaf->iova[c->slot];
	out->addr_mask = meta_mask(meta);
	out->translated_addr = leaf->pa[c->slot];
	out->perm = meta_perm(meta);
}

uint64_t viommu__emap_iova(const struct viommu__emap_cursor *c)
{
	assert(c->leaf && c->slot < c->leaf->nr);
	return to_leaf(c->leaf)->iova[c->slot];
}

bool viommu__emap_next(struct viommu__emap_cursor *c)
{
	struct emap_leaf *leaf = to_leaf(c->leaf);

	if (!leaf)
		return false;
	if (++c->slot < leaf->hdr.nr)
		return true;
	c->slot = 0;
	c->leaf = leaf->next ? &leaf->next->hdr : NULL;
	return c->leaf != NULL;
}

bool viommu__emap_lookup(const struct viommu__emap *map, uint64_t addr,
			 struct viommu_entry *out)
{
	struct viommu__emap_cursor c;

	if (!viommu__emap_seek(map, addr, &c) || viommu__emap_iova(&c) > addr)
		return false;
	viommu__emap_get(&c, out);
	return true;
}

int viommu__emap_replace(struct viommu__emap *map, const struct viommu_entry *e)
{
	struct viommu__emap_cursor c;
	struct emap_leaf *leaf;

	if (!viommu__emap_seek(map, e->iova, &c))
		return -ENOENT;
	leaf = to_leaf(c.leaf);
	if (leaf->iova[c.slot] != e->iova ||
	    meta_mask(leaf->meta[c.slot]) != e->addr_mask)
		return -ENOENT;
	leaf->pa[c.slot] = e->translated_addr;
	leaf->meta[c.slot] = meta_pack(e->addr_mask, e->perm);
	return 0;
}
