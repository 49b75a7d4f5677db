# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Native kernel of the matcher: `Matcher.find_by_field` and `Matcher.entities` of
`monitor/core/matcher.py` in C.

matcher.py holds the reference (`_raw`, `_check`, `_context`, `_accept`) and uses this
module when setup.py has built it. The two must report the same hits and the same term
hits in the same order; tests/test_compiled_matcher.py compares them over corpora and
random texts. The automaton and its call are the matcher's own; what is typed here is
the walk over its matches. Each key's edge flags and records live in C arrays built
once per matcher, characters are read in place, and candidates, exclude spans and
guard-word hits stay C structs: Python objects are made only for what leaves (the
accepted hits, the terms and the entity ids). Folding a text that is not ASCII skips
`str.lower`'s per-character case lookup where no character but ASCII letters changes.

Sorting accepted hits as the reference sorts its tuples (start, end, entity, group,
alias) needs the strings' order as numbers: entity ids and alias ranks are positions in
the sorted strings.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_Append, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport (
    PyUnicode_DATA,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
)
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset


cdef extern from *:
    """
    static PyObject *__pyx_matcher_triple(PyObject *a, PyObject *b, PyObject *c) {
        PyObject *t = PyTuple_New(3);
        if (t == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(t, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(t, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(t, 2, c);
        return t;
    }
    static PyObject *__pyx_matcher_hit(
        PyObject *a, PyObject *b, PyObject *c, PyObject *d, PyObject *e
    ) {
        PyObject *t = PyTuple_New(5);
        if (t == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(t, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(t, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(t, 2, c);
        Py_INCREF(d); PyTuple_SET_ITEM(t, 3, d);
        Py_INCREF(e); PyTuple_SET_ITEM(t, 4, e);
        return t;
    }

    /* Bit c: the BMP character c is its own lower case (set up on import). */
    static unsigned char __pyx_matcher_lower_same[0x10000 / 8];

    static void __pyx_matcher_lower_init(void) {
        Py_UCS4 c;
        for (c = 0; c < 0x10000; c++)
            if (Py_UNICODE_TOLOWER(c) == c)
                __pyx_matcher_lower_same[c >> 3] |= (unsigned char)(1 << (c & 7));
    }

    #define __PYX_MATCHER_LOWER_LOOP(T)                                              \
        {                                                                            \
            const T *s = (const T *)PyUnicode_DATA(text);                            \
            T *d = (T *)PyUnicode_DATA(out);                                         \
            for (i = 0; i < n; i++) {                                                \
                Py_UCS4 c = s[i];                                                    \
                if (c < 128) {                                                       \
                    if (c - 'A' < 26u) c += 32;                                      \
                } else if (!(same[c >> 3] & (1 << (c & 7)))) {                       \
                    Py_DECREF(out);                                                  \
                    Py_RETURN_NONE;                                                  \
                }                                                                    \
                d[i] = (T)c;                                                         \
            }                                                                        \
        }

    /* `text.lower()` when `text` is not ASCII and each of its other characters is its
       own lower case (the string then keeps its kind); None otherwise. */
    static PyObject *__pyx_matcher_lower(PyObject *text) {
        const unsigned char *same = __pyx_matcher_lower_same;
        Py_ssize_t i, n = PyUnicode_GET_LENGTH(text);
        int kind = PyUnicode_KIND(text);
        PyObject *out;
        if (PyUnicode_IS_ASCII(text) || kind == PyUnicode_4BYTE_KIND)
            Py_RETURN_NONE;  /* str.lower is quick on ASCII; astral text is rare */
        out = PyUnicode_New(n, PyUnicode_MAX_CHAR_VALUE(text));
        if (out == NULL) return NULL;
        if (kind == PyUnicode_1BYTE_KIND) __PYX_MATCHER_LOWER_LOOP(Py_UCS1)
        else __PYX_MATCHER_LOWER_LOOP(Py_UCS2)
        return out;
    }
    """
    void _lower_init "__pyx_matcher_lower_init"()
    # new references, NULL (an exception) on error
    object _lower_same "__pyx_matcher_lower"(object text)
    object _triple "__pyx_matcher_triple"(PyObject *a, PyObject *b, PyObject *c)
    object _hit "__pyx_matcher_hit"(PyObject *a, PyObject *b, PyObject *c, PyObject *d, PyObject *e)


# Record kinds and edge flags of this module (matcher.py's are translated on build).
cdef enum:
    K_ALIAS = 0
    K_TERM = 1
    K_EXCLUDE = 2
    K_SURE = 3
    K_WORD = 4

cdef enum:
    E_LEFT_HANGUL = 1
    E_LEFT_ALNUM = 2
    E_RIGHT_ALNUM = 4
    E_RULE_ONLY = 8  # the key holds one rule term: `entities` skips it

# A guard word's role in a guarded group, and a group's context in one field.
cdef enum:
    G_NEAR = 1
    G_AVOID = 2

cdef enum:
    C_UNKNOWN = 0
    C_ANYWHERE = 1  # no near word required
    C_AVOIDED = 2  # an avoid word is in the article
    C_NEAR = 3  # near words required: the spans in `near`

cdef long long _ABSENT = -(10 ** 9)  # the reference's span for "required but absent"

_lower_init()


def lower(text):
    """`text.lower()`: written out directly when each character other than ASCII is its
    own lower case (Hangul text is), else by `str.lower`. The scan folds with it."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, not {type(text).__name__}")
    low = _lower_same(text)
    return text.lower() if low is None else low


cdef struct Rec:  # one record of a key
    int kind
    int entity  # alias, sure, exclude: entity id; else -1
    int term  # term, word: term id; else -1
    int group
    int alias_rank
    PyObject *exact  # the cased form, or NULL
    PyObject *owner  # the owner, group and alias objects of the reference's tuples
    PyObject *group_obj
    PyObject *alias


cdef struct Hit:  # a candidate or an accepted hit
    Py_ssize_t start, end
    int entity, group, alias_rank, rec
    PyObject *ostart  # the automaton's int objects (its list is alive meanwhile)
    PyObject *oend


cdef struct Span:  # an exclude span (id: entity) or a guard-word hit (id: word slot)
    int id
    int field
    Py_ssize_t start, end


cdef struct Buf:  # a growing array of `size`-byte items, first in `local` storage
    char *data
    Py_ssize_t n, cap, size
    bint heap  # `data` was allocated (else it is the caller's `local` storage)


cdef inline void _buf_init(Buf *b, Py_ssize_t size, void *local, Py_ssize_t cap) noexcept nogil:
    b.data = <char *>local
    b.n = 0
    b.cap = cap
    b.size = size
    b.heap = False


cdef inline void _buf_free(Buf *b) noexcept nogil:
    if b.heap:
        free(b.data)


cdef void *_grow(Buf *b) except NULL:
    cdef Py_ssize_t cap = 2 * b.cap if b.cap else 16
    cdef char *data
    if b.heap:
        data = <char *>realloc(b.data, cap * b.size)
    else:
        data = <char *>malloc(cap * b.size)
        if data != NULL:
            memcpy(data, b.data, b.n * b.size)
    if data == NULL:
        raise MemoryError()
    b.data = data
    b.cap = cap
    b.heap = True
    return data


cdef inline void *_push(Buf *b) except NULL:
    if b.n == b.cap:
        _grow(b)
    b.n += 1
    return b.data + (b.n - 1) * b.size


cdef inline bint _alnum(Py_UCS4 c) noexcept nogil:
    """An ASCII letter or digit."""
    return (u'a' <= c <= u'z') or (u'A' <= c <= u'Z') or (u'0' <= c <= u'9')


cdef inline bint _before(const Hit *x, const Hit *y) noexcept nogil:
    """Whether `x` sorts before `y` as the reference's (start, end, entity, group,
    alias) tuples do."""
    if x.start != y.start:
        return x.start < y.start
    if x.end != y.end:
        return x.end < y.end
    if x.entity != y.entity:
        return x.entity < y.entity
    if x.group != y.group:
        return x.group < y.group
    return x.alias_rank < y.alias_rank


cdef void _sort(Hit *a, Py_ssize_t n) noexcept nogil:
    """Insertion sort: the automaton reports hits by end, so a hit moves back only past
    the hits that overlap it (end later, start earlier): few moves on any text."""
    cdef Py_ssize_t i, j
    cdef Hit h
    for i in range(1, n):
        if not _before(&a[i], &a[i - 1]):
            continue
        h = a[i]
        j = i
        while j > 0 and _before(&h, &a[j - 1]):
            a[j] = a[j - 1]
            j -= 1
        a[j] = h


cdef void _sort_ints(int *a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef int x
    for i in range(1, n):
        x = a[i]
        j = i
        while j > 0 and x < a[j - 1]:
            a[j] = a[j - 1]
            j -= 1
        a[j] = x


cdef struct Scan:  # one call's working state; both fields (0: title, 1: body)
    Buf cands[2]  # candidates a guard or exclude form may still reject
    Buf sure[2]  # hits nothing can reject
    Buf excluded[2]  # exclude spans
    Buf words  # hits of guard words, both fields
    Buf near  # the near spans of the contexts worked out
    Buf kept
    Buf found_ids
    int *context  # per field and guarded group: C_*, then offset and count in `near`
    char *found  # per entity: found (`entities` only)
    bint heap_context, heap_found
    # first storage of the arrays above: enough for most articles without malloc
    Hit local_cands[2][32]
    Hit local_sure[2][32]
    Span local_excluded[2][8]
    Span local_words[16]
    Span local_near[16]
    Hit local_kept[64]
    int local_found[32]
    int local_context[2 * 3 * 32]
    char local_found_flags[1024]


cdef void _scan_init(Scan *s) noexcept nogil:
    cdef int f
    for f in range(2):
        _buf_init(&s.cands[f], sizeof(Hit), s.local_cands[f], 32)
        _buf_init(&s.sure[f], sizeof(Hit), s.local_sure[f], 32)
        _buf_init(&s.excluded[f], sizeof(Span), s.local_excluded[f], 8)
    _buf_init(&s.words, sizeof(Span), s.local_words, 16)
    _buf_init(&s.near, sizeof(Span), s.local_near, 16)
    _buf_init(&s.kept, sizeof(Hit), s.local_kept, 64)
    _buf_init(&s.found_ids, sizeof(int), s.local_found, 32)
    s.context = NULL
    s.found = NULL
    s.heap_context = s.heap_found = False


cdef void _scan_free(Scan *s) noexcept nogil:
    cdef int f
    for f in range(2):
        _buf_free(&s.cands[f])
        _buf_free(&s.sure[f])
        _buf_free(&s.excluded[f])
    _buf_free(&s.words)
    _buf_free(&s.near)
    _buf_free(&s.kept)
    _buf_free(&s.found_ids)
    if s.heap_context:
        free(s.context)
    if s.heap_found:
        free(s.found)


cdef class Kernel:
    """The matcher's records as C arrays, and its scan over them.

    `Kernel(automaton, keys, payloads, groups, guarded, fold, kinds, edges)` takes what
    `build_matcher` made (`kinds`: matcher.py's record kinds alias, term, exclude, sure,
    word; `edges`: its left-Hangul, left-alnum and right-alnum flags) and keeps it:
    the matcher is frozen, so is this."""

    cdef object find_matches, fold, payloads, term_list, entity_names, where
    cdef PyObject *where_obj[2]
    cdef Py_ssize_t n_keys, n_recs, n_terms, n_words, n_guarded, n_entities
    cdef unsigned char *key_flags
    cdef int *key_rec  # the first record of each key
    cdef int *key_nrec
    cdef int *key_word  # the term id riding along with the key's first record, or -1
    cdef Rec *recs
    cdef PyObject **term_keys  # by term id
    cdef int *word_slot  # term id -> guard-word slot, or -1
    cdef int *group_slot  # group -> guarded slot, or -1
    cdef int *guard_entity  # by guarded slot
    cdef long long *guard_window
    cdef unsigned char *guard_has  # by guarded slot: G_NEAR, G_AVOID
    cdef unsigned char *guard_role  # guarded slot * n_words + word slot -> G_NEAR, G_AVOID

    def __cinit__(self):
        self.key_flags = NULL
        self.key_rec = NULL
        self.key_nrec = NULL
        self.key_word = NULL
        self.recs = NULL
        self.term_keys = NULL
        self.word_slot = NULL
        self.group_slot = NULL
        self.guard_entity = NULL
        self.guard_window = NULL
        self.guard_has = NULL
        self.guard_role = NULL

    def __dealloc__(self):
        free(self.key_flags)
        free(self.key_rec)
        free(self.key_nrec)
        free(self.key_word)
        free(self.recs)
        free(self.term_keys)
        free(self.word_slot)
        free(self.group_slot)
        free(self.guard_entity)
        free(self.guard_window)
        free(self.guard_has)
        free(self.guard_role)

    def __init__(self, automaton, keys, payloads, groups, guarded, fold, kinds, edges):
        cdef Py_ssize_t i, r, s
        cdef Rec *rec
        if self.key_flags != NULL:
            raise TypeError("a Kernel is built once")
        self.find_matches = (
            automaton.find_matches_as_indexes if automaton is not None else None
        )
        self.fold = fold
        self.payloads = payloads = tuple(payloads)  # holds every object the records point to
        self.where = ("title", "body")
        self.where_obj[0] = <PyObject *>self.where[0]
        self.where_obj[1] = <PyObject *>self.where[1]
        alias_k, term_k, exclude_k, sure_k, word_k = kinds
        code = {
            alias_k: K_ALIAS, term_k: K_TERM, exclude_k: K_EXCLUDE, sure_k: K_SURE, word_k: K_WORD
        }
        left_hangul, left_alnum, right_alnum = edges
        if len(payloads) != len(keys):
            raise ValueError("one payload per key")

        # The ids of the records' strings: entities, and term keys (with the guard words).
        entities = {g.entity for g in groups}
        terms = {}  # term key -> id, in order of appearance
        for p in payloads:
            flags, kind, owner, group, exact, alias, word, more = p
            for k, o, g, x, a in ((kind, owner, group, exact, alias), *more):
                if code[k] in (K_TERM, K_WORD):
                    terms.setdefault(o, len(terms))
                else:
                    entities.add(o)
            if word is not None:
                terms.setdefault(word, len(terms))
        guard_words = {}  # term key -> slot
        for g in groups:
            for k in sorted(g.near | g.avoid):
                terms.setdefault(k, len(terms))
                guard_words.setdefault(k, len(guard_words))
        names = tuple(sorted(entities))
        entity_id = {e: i for i, e in enumerate(names)}
        alias_rank = {
            a: i
            for i, a in enumerate(sorted({rc[4] for p in payloads for rc in (p[1:6], *p[7])}))
        }
        self.entity_names = names
        self.n_entities = len(names)

        self.n_keys = len(keys)
        self.n_recs = sum(1 + len(p[7]) for p in payloads)
        self.n_terms = len(terms)
        self.key_flags = <unsigned char *>_alloc(self.n_keys, sizeof(unsigned char))
        self.key_rec = <int *>_alloc(self.n_keys, sizeof(int))
        self.key_nrec = <int *>_alloc(self.n_keys, sizeof(int))
        self.key_word = <int *>_alloc(self.n_keys, sizeof(int))
        self.recs = <Rec *>_alloc(self.n_recs, sizeof(Rec))
        self.term_list = tuple(terms)  # (in id order) holds the keys of guard words too
        self.term_keys = <PyObject **>_alloc(self.n_terms, sizeof(PyObject *))
        self.word_slot = <int *>_alloc(self.n_terms, sizeof(int))
        for i, t in enumerate(self.term_list):
            self.term_keys[i] = <PyObject *>t
            self.word_slot[i] = guard_words.get(t, -1)
        r = 0
        for i, p in enumerate(payloads):
            flags, kind, owner, group, exact, alias, word, more = p
            self.key_flags[i] = (
                (E_LEFT_HANGUL if flags & left_hangul else 0)
                | (E_LEFT_ALNUM if flags & left_alnum else 0)
                | (E_RIGHT_ALNUM if flags & right_alnum else 0)
                | (E_RULE_ONLY if code[kind] == K_TERM and not more else 0)
            )
            self.key_rec[i] = r
            self.key_nrec[i] = 1 + len(more)
            self.key_word[i] = terms[word] if word is not None else -1
            for item in (p[1:6], *more):
                k, o, g, x, a = item
                rec = &self.recs[r]
                rec.kind = code[k]
                if rec.kind in (K_ALIAS, K_SURE) and not 0 <= g < len(groups):
                    raise ValueError(f"alias {a!r}: no guard group {g!r}")
                rec.entity = entity_id[o] if rec.kind not in (K_TERM, K_WORD) else -1
                rec.term = terms[o] if rec.kind in (K_TERM, K_WORD) else -1
                rec.group = g
                rec.alias_rank = alias_rank[a]
                if x is not None and not isinstance(x, str):
                    raise TypeError(f"alias {a!r}: a cased form is a str, not {x!r}")
                rec.exact = <PyObject *>x if x is not None else NULL
                rec.owner = <PyObject *>o
                rec.group_obj = <PyObject *>g
                rec.alias = <PyObject *>a
                r += 1

        # The guarded groups: entity, window, and each guard word's role.
        guarded_order = sorted(guarded)
        self.n_guarded = len(guarded_order)
        self.n_words = len(guard_words)
        self.group_slot = <int *>_alloc(len(groups), sizeof(int))
        self.guard_entity = <int *>_alloc(self.n_guarded, sizeof(int))
        self.guard_window = <long long *>_alloc(self.n_guarded, sizeof(long long))
        self.guard_has = <unsigned char *>_alloc(self.n_guarded, sizeof(unsigned char))
        self.guard_role = <unsigned char *>_alloc(
            self.n_guarded * self.n_words, sizeof(unsigned char)
        )
        memset(self.guard_role, 0, self.n_guarded * self.n_words)
        for i in range(len(groups)):
            self.group_slot[i] = -1
        for s, i in enumerate(guarded_order):
            g = groups[i]
            self.group_slot[i] = s
            self.guard_entity[s] = entity_id[g.entity]
            # (clamped: beyond this, no text is long enough for the window to matter)
            self.guard_window[s] = min(max(g.window, -(2 ** 62)), 2 ** 62)
            self.guard_has[s] = (G_NEAR if g.near else 0) | (G_AVOID if g.avoid else 0)
            for k in g.near:
                self.guard_role[s * self.n_words + guard_words[k]] |= G_NEAR
            for k in g.avoid:
                self.guard_role[s * self.n_words + guard_words[k]] |= G_AVOID

    def find_by_field(self, title, body):
        """`Matcher.find_by_field`: the title's accepted hits, the body's, and the terms."""
        cdef Scan s
        cdef dict terms = {}
        _scan_init(&s)
        try:
            # (the automaton's lists stay alive until the hits that point into them are made)
            mt = self._scan(&s, title, 0, terms)
            mb = self._scan(&s, body, 1, terms)
            return self._accept(&s, 0), self._accept(&s, 1), terms
        finally:
            _scan_free(&s)

    def entities(self, title, body):
        """`Matcher.entities`: the ids of the entities with an accepted hit, sorted."""
        cdef Scan s
        cdef Py_ssize_t i, f
        cdef int *ids
        cdef Hit *c
        _scan_init(&s)
        try:
            if self.n_entities <= 1024:
                s.found = s.local_found_flags
            else:
                s.found = <char *>_alloc(self.n_entities, sizeof(char))
                s.heap_found = True
            memset(s.found, 0, self.n_entities)
            mt = self._scan(&s, title, 0, None)
            mb = self._scan(&s, body, 1, None)
            self._prepare_contexts(&s)
            for f in range(2):
                for i in range(s.cands[f].n):
                    c = &(<Hit *>s.cands[f].data)[i]
                    if not s.found[c.entity] and self._passes(&s, c, f):
                        _found_add(&s, c.entity)
            ids = <int *>s.found_ids.data
            _sort_ints(ids, s.found_ids.n)
            return tuple([self.entity_names[ids[i]] for i in range(s.found_ids.n)])
        finally:
            _scan_free(&s)

    cdef object _scan(self, Scan *s, object text, int field, dict terms):
        """`Matcher._raw` over one field: candidates, sure hits (or, for `entities`
        with `terms` None, found entities), exclude spans and guard-word hits into `s`,
        term hits into `terms`. Returns the automaton's matches (kept by the caller)."""
        cdef list matches
        cdef Py_ssize_t n, i, m, idx, start, end, r, last
        cdef PyObject *item
        cdef PyObject *ostart
        cdef PyObject *oend
        cdef int kind, flags, word
        cdef void *data
        cdef Py_UCS4 c
        cdef Rec *rec
        cdef bint rules = terms is not None
        if not text or self.find_matches is None:
            return None
        if not isinstance(text, str):
            raise TypeError(f"expected a str, not {type(text).__name__}")
        n = PyUnicode_GET_LENGTH(text)
        low = self.fold(text)  # matcher.fold: lower() below, memoised for the stance scan
        result = self.find_matches(low, overlapping=True)
        matches = result if type(result) is list else list(result)
        m = PyList_GET_SIZE(matches)
        kind = PyUnicode_KIND(text)
        data = PyUnicode_DATA(text)
        for i in range(m):
            item = PyList_GET_ITEM(matches, i)
            if not isinstance(<object>item, tuple) or PyTuple_GET_SIZE(<object>item) != 3:
                raise TypeError("the automaton's matches are (index, start, end) tuples")
            # (Cython's conversions read small ints in place)
            idx = <object>PyTuple_GET_ITEM(<object>item, 0)
            ostart = PyTuple_GET_ITEM(<object>item, 1)
            oend = PyTuple_GET_ITEM(<object>item, 2)
            start = <object>ostart
            end = <object>oend
            if not (0 <= idx < self.n_keys and 0 <= start <= end <= n):
                raise ValueError("a match outside the automaton's keys or the text")
            flags = self.key_flags[idx]
            if flags & E_RULE_ONLY and not rules:
                continue
            # Edge flags are the same for every record of a key: check them once.
            if start and flags & (E_LEFT_HANGUL | E_LEFT_ALNUM):
                c = PyUnicode_READ(kind, data, start - 1)
                if flags & E_LEFT_HANGUL and 0xAC00 <= c <= 0xD7A3:  # 가-힣
                    continue
                if flags & E_LEFT_ALNUM and _alnum(c):
                    continue
            if end < n and flags & E_RIGHT_ALNUM:
                c = PyUnicode_READ(kind, data, end)
                if _alnum(c) and (
                    c != u's' or (end + 1 < n and _alnum(PyUnicode_READ(kind, data, end + 1)))
                ):
                    continue  # a plural "s" may follow (H100s), other letters not (H200)
            r = self.key_rec[idx]
            rec = &self.recs[r]
            if rec.exact == NULL or _same(kind, data, start, end, rec.exact):
                if rec.kind == K_SURE:
                    if rules:
                        _add_hit(&s.sure[field], rec, r, start, end, ostart, oend)
                    elif not s.found[rec.entity]:
                        _found_add(s, rec.entity)
                elif rec.kind == K_ALIAS:
                    if rules or not s.found[rec.entity]:
                        _add_hit(&s.cands[field], rec, r, start, end, ostart, oend)
                elif rec.kind == K_TERM or rec.kind == K_WORD:
                    self._term(s, terms, rec.term, field, start, end, ostart, oend)
                elif rec.kind == K_EXCLUDE:
                    _add_span(&s.excluded[field], rec.entity, field, start, end)
            word = self.key_word[idx]
            if word >= 0:  # the key is also a guard word or rule term
                self._term(s, terms, word, field, start, end, ostart, oend)
            last = r + self.key_nrec[idx]
            r += 1
            while r < last:  # the second and later records of the key
                rec = &self.recs[r]
                if rec.exact == NULL or _same(kind, data, start, end, rec.exact):
                    if rec.kind == K_ALIAS or rec.kind == K_SURE:
                        if rules or not s.found[rec.entity]:
                            _add_hit(&s.cands[field], rec, r, start, end, ostart, oend)
                    elif rec.kind == K_WORD or (rec.kind == K_TERM and rules):
                        self._term(s, terms, rec.term, field, start, end, ostart, oend)
                    elif rec.kind == K_EXCLUDE:
                        _add_span(&s.excluded[field], rec.entity, field, start, end)
                r += 1
        return matches

    cdef int _term(
        self, Scan *s, dict terms, int term, int field, Py_ssize_t start, Py_ssize_t end,
        PyObject *ostart, PyObject *oend,
    ) except -1:
        """A term hit: into `terms` (unless None), and into `s.words` if a guard uses it."""
        cdef PyObject *occ
        cdef PyObject *key
        cdef int slot = self.word_slot[term]
        if slot >= 0:
            _add_span(&s.words, slot, field, start, end)
        if terms is None:
            return 0
        key = self.term_keys[term]
        hit = _triple(self.where_obj[field], ostart, oend)
        occ = PyDict_GetItem(terms, <object>key)
        if occ == NULL:
            PyDict_SetItem(terms, <object>key, [hit])
        else:
            PyList_Append(<object>occ, hit)
        return 0

    cdef int _prepare_contexts(self, Scan *s) except -1:
        if self.n_guarded and s.context == NULL:
            if self.n_guarded <= 32:
                s.context = s.local_context
            else:
                s.context = <int *>_alloc(2 * 3 * self.n_guarded, sizeof(int))
                s.heap_context = True
            memset(s.context, 0, 2 * 3 * self.n_guarded * sizeof(int))
        return 0

    cdef int _context(self, Scan *s, int slot, int field) except -1:
        """`_context` of the guarded group in `slot` for `field` (C_*); with C_NEAR its
        spans are in `s.near` at the offset and count stored beside it."""
        cdef int *ctx = &s.context[3 * (field * self.n_guarded + slot)]
        cdef Span *w
        cdef Span *x
        cdef Span *sp
        cdef Py_ssize_t i, j, first
        cdef int entity
        cdef unsigned char *role = &self.guard_role[slot * self.n_words]
        if ctx[0] != C_UNKNOWN:
            return ctx[0]
        if self.guard_has[slot] & G_AVOID:
            for i in range(s.words.n):
                if role[(<Span *>s.words.data)[i].id] & G_AVOID:
                    ctx[0] = C_AVOIDED
                    return ctx[0]
        if not self.guard_has[slot] & G_NEAR:
            ctx[0] = C_ANYWHERE
            return ctx[0]
        # Near-word hits in this field; one inside an exclude form of the entity does
        # not count.
        entity = self.guard_entity[slot]
        first = s.near.n
        for i in range(s.words.n):
            w = &(<Span *>s.words.data)[i]
            if w.field != field or not role[w.id] & G_NEAR:
                continue
            for j in range(s.excluded[field].n):
                x = &(<Span *>s.excluded[field].data)[j]
                if x.id == entity and x.start <= w.start and w.end <= x.end:
                    break
            else:
                sp = <Span *>_push(&s.near)
                sp[0] = w[0]
        if s.near.n == first:  # required but absent: nothing is near
            sp = <Span *>_push(&s.near)
            sp.start = sp.end = _ABSENT
        ctx[0] = C_NEAR
        ctx[1] = <int>first
        ctx[2] = <int>(s.near.n - first)
        return ctx[0]

    cdef int _passes(self, Scan *s, Hit *c, int field) except -1:
        """`_check` of one candidate: no exclude form of its entity covers it, and its
        guard holds."""
        cdef Py_ssize_t i
        cdef Span *x
        cdef Span *near
        cdef int slot, state, count
        cdef long long window
        for i in range(s.excluded[field].n):
            x = &(<Span *>s.excluded[field].data)[i]
            if x.id == c.entity and x.start <= c.start and c.end <= x.end:
                return False
        slot = self.group_slot[c.group]
        if slot < 0:
            return True
        state = self._context(s, slot, field)
        if state == C_AVOIDED:
            return False
        if state == C_ANYWHERE:
            return True
        near = &(<Span *>s.near.data)[s.context[3 * (field * self.n_guarded + slot) + 1]]
        count = s.context[3 * (field * self.n_guarded + slot) + 2]
        window = self.guard_window[slot]
        for i in range(count):
            if near[i].start - c.end <= window and c.start - near[i].end <= window:
                return True
        return False  # no near word within the window

    cdef list _accept(self, Scan *s, int field):
        """`Matcher._accept`: the sure hits and the candidates that pass, ordered by
        position, without same-entity hits nested in longer ones; as tuples."""
        cdef Hit *kept
        cdef Hit *c
        cdef Hit *prev
        cdef Rec *rec
        cdef Py_ssize_t i, n, k
        cdef list out
        s.kept.n = 0
        for i in range(s.sure[field].n):
            (<Hit *>_push(&s.kept))[0] = (<Hit *>s.sure[field].data)[i]
        if s.cands[field].n:
            self._prepare_contexts(s)
        for i in range(s.cands[field].n):
            c = &(<Hit *>s.cands[field].data)[i]
            if self._passes(s, c, field):
                (<Hit *>_push(&s.kept))[0] = c[0]
        kept = <Hit *>s.kept.data
        n = s.kept.n
        if n >= 2:
            # The automaton reports by end position: order by start, then drop a hit of
            # an entity nested in a longer hit of the same entity (하이닉스 in SK하이닉스).
            _sort(kept, n)
            k = 1
            for i in range(1, n):
                c = &kept[i]
                prev = &kept[k - 1]
                if c.entity == prev.entity and c.end <= prev.end:
                    continue
                if c.entity == prev.entity and c.start == prev.start:
                    prev[0] = c[0]  # same start, longer form
                    continue
                kept[k] = c[0]
                k += 1
            n = k
        out = []
        for i in range(n):
            rec = &self.recs[kept[i].rec]
            out.append(_hit(kept[i].ostart, kept[i].oend, rec.owner, rec.group_obj, rec.alias))
        return out


cdef void *_alloc(Py_ssize_t n, size_t size) except NULL:
    cdef void *p = malloc((n if n > 0 else 1) * size)
    if p == NULL:
        raise MemoryError()
    return p


cdef inline int _add_hit(
    Buf *b, Rec *rec, Py_ssize_t r, Py_ssize_t start, Py_ssize_t end,
    PyObject *ostart, PyObject *oend,
) except -1:
    cdef Hit *h = <Hit *>_push(b)
    h.start = start
    h.end = end
    h.entity = rec.entity
    h.group = rec.group
    h.alias_rank = rec.alias_rank
    h.rec = <int>r
    h.ostart = ostart
    h.oend = oend
    return 0


cdef inline int _add_span(
    Buf *b, int id, int field, Py_ssize_t start, Py_ssize_t end
) except -1:
    cdef Span *sp = <Span *>_push(b)
    sp.id = id
    sp.field = field
    sp.start = start
    sp.end = end
    return 0


cdef inline int _found_add(Scan *s, int entity) except -1:
    s.found[entity] = 1
    (<int *>_push(&s.found_ids))[0] = entity
    return 0


cdef inline bint _same(
    int kind, void *data, Py_ssize_t start, Py_ssize_t end, PyObject *exact
) noexcept:
    """Whether text[start:end] is `exact`."""
    cdef Py_ssize_t i, m = PyUnicode_GET_LENGTH(<object>exact)
    cdef int xkind
    cdef void *xdata
    if end - start != m:
        return False
    xkind = PyUnicode_KIND(<object>exact)
    xdata = PyUnicode_DATA(<object>exact)
    for i in range(m):
        if PyUnicode_READ(kind, data, start + i) != PyUnicode_READ(xkind, xdata, i):
            return False
    return True
