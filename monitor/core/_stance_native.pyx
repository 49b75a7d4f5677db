# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Native kernel of the stance analysis: the lexicon scan, clause cuts and cue records.

`monitor/core/stance.py` holds the reference implementation of the same steps in
Python (`_scan_text`, `_text_records` and the functions they call) and uses this
module when setup.py has built it. The two must find exactly the same records; the
tests compare them (tests/test_compiled.py).

The data here is typed: a term's groups become a small integer (the id of its group
set) with a bit mask of the markers the analysis tests for, tokens live in flat C
arrays, and a pair's subjects are a table over group-set ids. Python objects are only
made for what leaves the kernel: the records of the cues found.
"""

from libc.math cimport fabs
from libc.stdlib cimport free, malloc, qsort

from monitor.core.lexicon import (
    _BOUNDARY as PY_BOUNDARY,
    _CUE as PY_CUE,
    _HIDDEN as PY_HIDDEN,
    _LEFT_ANY as PY_LEFT_ANY,
    _LEFT_LATIN as PY_LEFT_LATIN,
    _RIGHT_LATIN as PY_RIGHT_LATIN,
    _SPECIAL as PY_SPECIAL,
    MENTION_GROUP,
    _lower,
)

cdef int K_CUE = PY_CUE
cdef int K_BOUNDARY = PY_BOUNDARY
cdef int K_SPECIAL = PY_SPECIAL
cdef int K_HIDDEN = PY_HIDDEN
cdef int C_LEFT = PY_LEFT_LATIN | PY_LEFT_ANY
cdef int C_LEFT_ANY = PY_LEFT_ANY
cdef int C_RIGHT_LATIN = PY_RIGHT_LATIN

# marker bits of a group set
cdef enum:
    F_HEDGE = 1 << 0
    F_REFUTE = 1 << 1  # refute or inverse
    F_BACKGROUND = 1 << 2
    F_BACKGROUND_BEFORE = 1 << 3
    F_NEG_AFTER = 1 << 4
    F_NEG_BEFORE = 1 << 5
    F_ATTRIBUTION = 1 << 6
    F_SUPPLIER = 1 << 7
    F_NOT_PRICE = 1 << 8
    F_COMPANY = 1 << 9
    F_DRIVER = 1 << 10
    F_MARK = 1 << 11  # any of the groups `_clause_marks` looks at
    F_REFUTE_BACK = 1 << 12
    F_RESOLVED = 1 << 13
    F_DEBATE = 1 << 14
    F_COUNTER = 1 << 15
    F_VERSUS = 1 << 16
    F_ALTERNATIVE = 1 << 17
    F_DOUBT = 1 << 18
    F_EXPLAINER = 1 << 19

EXPLAINER = F_EXPLAINER
SUPPLIER = F_SUPPLIER
VERSUS = F_VERSUS
DEBATE = F_DEBATE
COUNTER = F_COUNTER
ALTERNATIVE = F_ALTERNATIVE
DOUBT = F_DOUBT

include "_tuples.pxi"
cdef int _NO_BACKGROUND = 1 << 30


cdef int _int_cmp(const void *a, const void *b) noexcept nogil:
    cdef int x = (<const int *>a)[0]
    cdef int y = (<const int *>b)[0]
    return (x > y) - (x < y)


cdef inline Py_ssize_t _bisect_right(const int *a, Py_ssize_t n, int x) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef inline Py_ssize_t _bisect_left(const int *a, Py_ssize_t n, int x) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline Py_ssize_t _sentence_index(const int *starts, Py_ssize_t n, int pos) noexcept nogil:
    cdef Py_ssize_t i = _bisect_right(starts, n, pos) - 1
    return i if i > 0 else 0


cdef inline bint _contains(const int *a, Py_ssize_t n, int x) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if a[i] == x:
            return True
    return False


cdef int *_ints(Py_ssize_t n) except NULL:
    cdef int *p = <int *>malloc((n if n > 0 else 1) * sizeof(int))
    if p == NULL:
        raise MemoryError()
    return p


cdef class Plan:
    """One compiled language in typed form, with the weights the clause step uses."""

    cdef object automaton
    cdef int n_entries, n_sets, n_pairs, mention_set
    cdef int *e_set
    cdef int *e_checks
    cdef int *e_kind
    cdef unsigned int *s_flags
    cdef int *s_phrase  # group set -> phrase index, or -1
    cdef int *s_pairs_lo  # group set -> its pairs in `pair_seq`
    cdef int *s_pairs_hi
    cdef int *pair_seq
    cdef unsigned char *subject  # pair * n_sets + group set: a subject of the pair
    cdef int *p_polarity
    cdef double *p_weight
    cdef double *p_after
    cdef unsigned char *p_price
    cdef list p_id, p_scope, p_kinds
    cdef int *ph_polarity
    cdef double *ph_weight
    cdef unsigned char *ph_price
    cdef list ph_id, ph_scope
    cdef int pair_window, neg_after_window, neg_before_window
    cdef double w_hedge, w_attribution, w_supplier, w_headline, w_question
    cdef double w_background, w_negated
    cdef object record_type, company_role, driver_role, no_kinds

    def __cinit__(self):
        self.e_set = self.e_checks = self.e_kind = NULL
        self.s_flags = NULL
        self.s_phrase = self.s_pairs_lo = self.s_pairs_hi = self.pair_seq = NULL
        self.subject = self.p_price = self.ph_price = NULL
        self.p_polarity = self.ph_polarity = NULL
        self.p_weight = self.p_after = self.ph_weight = NULL

    def __init__(self, lang, weights, record_type, company_role, driver_role):
        cdef Py_ssize_t i
        self.automaton = lang.automaton
        self.record_type = record_type
        self.company_role, self.driver_role = company_role, driver_role
        self.no_kinds = frozenset()
        self.pair_window = lang.pair_window
        self.neg_after_window = lang.negation_after_window
        self.neg_before_window = lang.negation_before_window
        self.w_hedge, self.w_attribution = weights.hedge, weights.attribution
        self.w_supplier, self.w_headline = weights.supplier, weights.headline
        self.w_question, self.w_background = weights.question, weights.background
        self.w_negated = weights.negated
        ids, mk = lang.ids, lang.marker_ids
        bits = (
            (ids.hedge, F_HEDGE), (ids.refute, F_REFUTE), (ids.inverse, F_REFUTE),
            (ids.background, F_BACKGROUND), (ids.background_before, F_BACKGROUND_BEFORE),
            (ids.negation_after, F_NEG_AFTER), (ids.negation_before, F_NEG_BEFORE),
            (ids.attribution, F_ATTRIBUTION), (ids.supplier, F_SUPPLIER),
            (ids.not_price, F_NOT_PRICE), (ids.company, F_COMPANY), (ids.driver, F_DRIVER),
            (mk["refute_back"], F_REFUTE_BACK), (mk["resolved"], F_RESOLVED),
            (mk["debate"], F_DEBATE), (mk["counter"], F_COUNTER), (mk["versus"], F_VERSUS),
            (mk["alternative"], F_ALTERNATIVE), (mk["doubt"], F_DOUBT),
            (mk["explainer"], F_EXPLAINER),
        )
        # group sets: every pattern's groups, and the engine's entity mentions
        set_ids = {}
        for groups, _checks, _kind in lang.entries:
            set_ids.setdefault(groups, len(set_ids))
        mention = (MENTION_GROUP,)
        set_ids.setdefault(mention, len(set_ids))
        self.mention_set = set_ids[mention]
        self.n_sets = len(set_ids)
        self.n_entries = len(lang.entries)
        self.e_set = _ints(self.n_entries)
        self.e_checks = _ints(self.n_entries)
        self.e_kind = _ints(self.n_entries)
        for i, (groups, checks, kind) in enumerate(lang.entries):
            self.e_set[i] = set_ids[groups]
            self.e_checks[i] = checks
            self.e_kind[i] = kind
        self.s_flags = <unsigned int *>_ints(self.n_sets)
        self.s_phrase = _ints(self.n_sets)
        self.s_pairs_lo = _ints(self.n_sets)
        self.s_pairs_hi = _ints(self.n_sets)
        marks = lang.clause_mark_groups
        pairs = {}  # id(Pair) -> index
        pair_list = []
        phrases = {}
        phrase_list = []
        seq = []
        for groups, s in set_ids.items():
            flags = 0
            for g, bit in bits:
                if g in groups:
                    flags |= bit
            if not marks.isdisjoint(groups):
                flags |= F_MARK
            self.s_flags[s] = flags
            self.s_phrase[s] = -1
            self.s_pairs_lo[s] = self.s_pairs_hi[s] = len(seq)
            cue = lang.cue_table.get(groups)
            if cue is None:
                continue
            phrase, cue_pairs = cue
            if phrase is not None:
                self.s_phrase[s] = phrases.setdefault(id(phrase), len(phrase_list))
                if self.s_phrase[s] == len(phrase_list):
                    phrase_list.append(phrase)
            for pair in cue_pairs:
                k = pairs.setdefault(id(pair), len(pair_list))
                if k == len(pair_list):
                    pair_list.append(pair)
                seq.append(k)
            self.s_pairs_hi[s] = len(seq)
        self.pair_seq = _ints(len(seq))
        for i, k in enumerate(seq):
            self.pair_seq[i] = k
        self.n_pairs = len(pair_list)
        self.p_polarity = _ints(self.n_pairs)
        self.p_weight = <double *>malloc((self.n_pairs + 1) * sizeof(double))
        self.p_after = <double *>malloc((self.n_pairs + 1) * sizeof(double))
        self.p_price = <unsigned char *>malloc(self.n_pairs + 1)
        self.subject = <unsigned char *>malloc(self.n_pairs * self.n_sets + 1)
        if not (self.p_weight and self.p_after and self.p_price and self.subject):
            raise MemoryError()
        self.p_id, self.p_scope, self.p_kinds = [], [], []
        for i, pair in enumerate(pair_list):
            self.p_polarity[i] = pair.polarity
            self.p_weight[i] = pair.weight
            self.p_after[i] = pair.after_factor
            self.p_price[i] = pair.scope == "price"
            self.p_id.append(pair.id)
            self.p_scope.append(pair.scope)
            self.p_kinds.append(pair.subject_kinds)
            subjects = pair.subjects_with_mentions
            for groups, s in set_ids.items():
                self.subject[i * self.n_sets + s] = not subjects.isdisjoint(groups)
        n = len(phrase_list)
        self.ph_polarity = _ints(n)
        self.ph_weight = <double *>malloc((n + 1) * sizeof(double))
        self.ph_price = <unsigned char *>malloc(n + 1)
        if not (self.ph_weight and self.ph_price):
            raise MemoryError()
        self.ph_id, self.ph_scope = [], []
        for i, phrase in enumerate(phrase_list):
            self.ph_polarity[i] = phrase.polarity
            self.ph_weight[i] = phrase.weight
            self.ph_price[i] = phrase.scope == "price"
            self.ph_id.append(phrase.id)
            self.ph_scope.append(phrase.scope)

    def __dealloc__(self):
        free(self.e_set)
        free(self.e_checks)
        free(self.e_kind)
        free(self.s_flags)
        free(self.s_phrase)
        free(self.s_pairs_lo)
        free(self.s_pairs_hi)
        free(self.pair_seq)
        free(self.subject)
        free(self.p_polarity)
        free(self.p_weight)
        free(self.p_after)
        free(self.p_price)
        free(self.ph_polarity)
        free(self.ph_weight)
        free(self.ph_price)


cdef class Field:
    """One scanned text: its tokens, sentence starts and clause cuts."""

    cdef int n, n_cues, n_specials, n_sentences, n_cuts
    cdef int *start
    cdef int *end
    cdef int *set
    cdef unsigned int *flag
    cdef int *cues  # tokens that can complete a cue
    cdef int *specials  # tokens of the article-level markers
    cdef int *sentences  # sentence starts
    cdef int *cuts  # clause starts, then len(text)
    cdef readonly unsigned int flags  # the markers of all its tokens
    cdef readonly unsigned int special_flags  # the markers of its special tokens

    def __cinit__(self):
        self.start = self.end = self.set = self.cues = self.specials = NULL
        self.sentences = self.cuts = NULL
        self.flag = NULL

    def __dealloc__(self):
        free(self.start)
        free(self.end)
        free(self.set)
        free(self.flag)
        free(self.cues)
        free(self.specials)
        free(self.sentences)
        free(self.cuts)

    @property
    def has_specials(self):
        return self.n_specials > 0

    def flags_within(self, spans):
        """The markers of the tokens that start inside one of `spans` (start, end, ...)."""
        cdef unsigned int out = 0
        cdef Py_ssize_t i
        cdef int pos
        for i in range(self.n):
            pos = self.start[i]
            for span in spans:
                if span[0] <= pos < span[1]:
                    out |= self.flag[i]
                    break
        return out

    def debate_sentences(self):
        """How many sentences hold a debate marker among the special tokens."""
        cdef Py_ssize_t i, n = 0
        cdef int index, k
        cdef int *seen = _ints(self.n_specials)
        try:
            for i in range(self.n_specials):
                k = self.specials[i]
                if self.flag[k] & F_DEBATE:
                    index = <int>_sentence_index(self.sentences, self.n_sentences, self.start[k])
                    if not _contains(seen, n, index):
                        seen[n] = index
                        n += 1
            return n
        finally:
            free(seen)


def scan(Plan plan, str text, sentence_starts, extra_starts):
    """Every lexicon term in `text` (as `lexicon.scan_text`) and the clause cuts (as
    `stance._scan_text`); `sentence_starts` ascending, `extra_starts` more clause starts."""
    cdef Field f = Field.__new__(Field)
    matches = plan.automaton.find_matches_as_indexes(_lower(text))
    cdef Py_ssize_t m = len(matches), n = len(text), i, j, k
    cdef Py_ssize_t n_sent = len(sentence_starts), n_extra = len(extra_starts)
    cdef int index, start, end, checks, kind, s, nb = 0, at, last_cut, si
    cdef Py_UCS4 ch
    cdef int *b_start = _ints(m)
    cdef int *b_end = NULL
    try:
        b_end = _ints(m)
        f.start = _ints(m)
        f.end = _ints(m)
        f.set = _ints(m)
        f.flag = <unsigned int *>_ints(m)
        f.cues = _ints(m)
        f.specials = _ints(m)
        for item in matches:
            index, start, end = <tuple>item
            checks = plan.e_checks[index]
            kind = plan.e_kind[index]
            if checks:
                if start and checks & C_LEFT:
                    ch = text[start - 1]
                    if ch.isalnum() and (checks & C_LEFT_ANY or ch < 128):
                        continue
                if end < n and checks & C_RIGHT_LATIN:
                    ch = text[end]
                    if ch < 128 and ch.isalnum():
                        continue
            if kind:
                if kind & K_HIDDEN:
                    if kind & K_BOUNDARY:
                        b_start[nb] = start
                        b_end[nb] = end
                        nb += 1
                    continue
                if kind & K_CUE:
                    f.cues[f.n_cues] = f.n
                    f.n_cues += 1
                elif kind & K_BOUNDARY:
                    b_start[nb] = start
                    b_end[nb] = end
                    nb += 1
                if kind & K_SPECIAL:
                    f.specials[f.n_specials] = f.n
                    f.n_specials += 1
            s = plan.e_set[index]
            f.start[f.n] = start
            f.end[f.n] = end
            f.set[f.n] = s
            f.flag[f.n] = plan.s_flags[s]
            f.flags |= plan.s_flags[s]
            if kind & K_SPECIAL:
                f.special_flags |= plan.s_flags[s]
            f.n += 1
        f.sentences = _ints(n_sent)
        f.n_sentences = <int>n_sent
        for i in range(n_sent):
            f.sentences[i] = sentence_starts[i]
        # clause cuts: sentence starts, extra starts and the boundaries that cut
        f.cuts = _ints(n_sent + n_extra + nb + 2)
        j = 0
        for i in range(n_sent):
            f.cuts[j] = f.sentences[i]
            j += 1
        for i in range(n_extra):
            f.cuts[j] = extra_starts[i]
            j += 1
        last_cut = 0
        si = 0
        for i in range(nb):
            at = b_start[i]
            while si < n_sent and f.sentences[si] <= at:
                if f.sentences[si] > last_cut:
                    last_cut = f.sentences[si]
                si += 1
            if text[at] == u"," and b_end[i] == at + 1:
                # "1,000" is a number; a comma soon after a cut sets off a topic or a list item
                if 0 < at < n - 1 and text[at - 1].isdigit() and text[at + 1].isdigit():
                    continue
                if at - last_cut < 16:
                    continue
            f.cuts[j] = at
            j += 1
            last_cut = at
        qsort(f.cuts, j, sizeof(int), _int_cmp)
        # as a set, without 0 and len(text) (the write index never passes the read one)
        k = 0
        last_cut = -1
        for i in range(j):
            at = f.cuts[i]
            if at != 0 and at != n and at != last_cut:
                f.cuts[k] = at
                k += 1
                last_cut = at
        # then 0 first, and len(text) to close the last clause
        for i in range(k, 0, -1):
            f.cuts[i] = f.cuts[i - 1]
        f.cuts[0] = 0
        f.cuts[k + 1] = <int>n
        f.n_cuts = <int>k + 2
    finally:
        free(b_start)
        free(b_end)
    return f


cdef class _Clause:
    """Scratch space of one field's clause analysis (merged tokens and candidates)."""

    cdef int n
    cdef int *start
    cdef int *end
    cdef int *set
    cdef unsigned int *flag
    cdef int *lexical  # merged position -> 1 for a lexicon term, 0 for a mention
    cdef int *where  # lexicon token -> merged position
    # candidates of the current clause
    cdef int *c_tok
    cdef int *c_cue  # pair index, or -2 - phrase index
    cdef int *c_subj
    cdef int *claimed
    cdef int *neg_after
    cdef int *neg_before
    cdef int *blockers
    cdef int *tagged
    cdef int *marks  # sentences that attribute / supply

    def __cinit__(self, int n, int n_lexical):
        cdef int k = n if n > 0 else 1
        self.start = _ints(k)
        self.end = _ints(k)
        self.set = _ints(k)
        self.flag = <unsigned int *>_ints(k)
        self.lexical = _ints(k)
        self.where = _ints(n_lexical)
        self.c_tok = _ints(k)
        self.c_cue = _ints(k)
        self.c_subj = _ints(k)
        self.claimed = _ints(k)
        self.neg_after = _ints(k)
        self.neg_before = _ints(k)
        self.blockers = _ints(k)
        self.tagged = _ints(k)
        self.marks = _ints(2 * k)
        self.n = n

    def __dealloc__(self):
        free(self.start)
        free(self.end)
        free(self.set)
        free(self.flag)
        free(self.lexical)
        free(self.where)
        free(self.c_tok)
        free(self.c_cue)
        free(self.c_subj)
        free(self.claimed)
        free(self.neg_after)
        free(self.neg_before)
        free(self.blockers)
        free(self.tagged)
        free(self.marks)


cdef int _best_cue(
    Plan p, _Clause c, int lo, int hi, int tok, int n_claimed, int *subject
) noexcept:
    """As `stance._best_cue`: the pair (index) or phrase (-2 - index) `tok` completes."""
    cdef int s = c.set[tok]
    cdef int phrase = p.s_phrase[s]
    cdef int found = -1, found_subj = -1, j, pi, t, subj, lo2, hi2
    cdef double found_gap = 0.0, found_weight = 0.0, gap, d, after
    cdef int pred_start = c.start[tok], pred_end = c.end[tok]
    cdef unsigned char *row
    cdef bint blocked
    for j in range(p.s_pairs_lo[s], p.s_pairs_hi[s]):
        pi = p.pair_seq[j]
        row = p.subject + pi * p.n_sets
        after = p.p_after[pi]
        subj = -1
        gap = <double>(p.pair_window + 1)
        for t in range(lo, hi):
            if t == tok or not row[c.set[t]]:
                continue
            if c.end[t] <= pred_start:
                d = <double>(pred_start - c.end[t])
            elif c.start[t] >= pred_end:
                d = <double>(c.start[t] - pred_end + 1) * after
            else:
                continue
            if d < gap:
                subj = t
                gap = d
        if subj < 0:
            continue
        if _contains(c.claimed, n_claimed, c.start[subj]):
            continue
        if p.p_price[pi]:
            lo2 = c.end[subj] if c.end[subj] < pred_end else pred_end
            hi2 = c.start[subj] if c.start[subj] > pred_start else pred_start
            blocked = False
            for t in range(lo, hi):
                if c.flag[t] & F_NOT_PRICE and lo2 <= c.start[t] < hi2:
                    blocked = True
                    break
            if blocked:
                continue
        if found < 0 or gap < found_gap or (gap == found_gap and p.p_weight[pi] > found_weight):
            found = pi
            found_gap = gap
            found_weight = p.p_weight[pi]
            found_subj = subj
    if phrase >= 0 and found < 0:
        subject[0] = -1
        return -2 - phrase
    subject[0] = found_subj
    return found


cdef inline Py_ssize_t _mention_from(list starts, Py_ssize_t n, int pos):
    """bisect_left over the mentions' starts."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if <int>starts[mid] < pos:
            lo = mid + 1
        else:
            hi = mid
    return lo


def records(
    Plan plan, Field f, str part, mentions, sentences, tuple questions,
    double modifier, roles, list out,
):
    """Append the records of every clause of `f` that holds a cue (as
    `stance._text_records`); `mentions` is the field's `_Mentions`."""
    cdef tuple items = mentions.items
    cdef list mstarts = list(mentions.starts)
    cdef Py_ssize_t nm = len(items), n = f.n + nm
    cdef _Clause c = _Clause(<int>n, f.n)
    cdef Py_ssize_t i, j, k, first = len(out)
    cdef int a_start, a_end, a_lex, a_set
    cdef unsigned int a_flag
    cdef tuple m  # a _Mention (a tuple subclass): read as a tuple, not through __getitem__
    cdef bint is_title = part == "title"
    if f.n_cues == 0:
        return
    # the field's terms and its entity mentions, ordered as tuples (start, end, groups)
    for i in range(f.n):
        c.start[i] = f.start[i]
        c.end[i] = f.end[i]
        c.set[i] = f.set[i]
        c.flag[i] = f.flag[i]
        c.lexical[i] = <int>i + 1
    for i in range(nm):
        m = <tuple>items[i]
        c.start[f.n + i] = m[0]
        c.end[f.n + i] = m[1]
        c.set[f.n + i] = plan.mention_set
        c.flag[f.n + i] = plan.s_flags[plan.mention_set]
        c.lexical[f.n + i] = 0
    if nm:
        for i in range(1, n):
            a_start, a_end, a_set = c.start[i], c.end[i], c.set[i]
            a_flag, a_lex = c.flag[i], c.lexical[i]
            j = i - 1
            while j >= 0 and (
                c.start[j] > a_start
                or (
                    c.start[j] == a_start
                    and (
                        c.end[j] > a_end
                        or (c.end[j] == a_end and (c.lexical[j] != 0) > (a_lex != 0))
                    )
                )
            ):
                c.start[j + 1], c.end[j + 1], c.set[j + 1] = c.start[j], c.end[j], c.set[j]
                c.flag[j + 1], c.lexical[j + 1] = c.flag[j], c.lexical[j]
                j -= 1
            c.start[j + 1], c.end[j + 1], c.set[j + 1] = a_start, a_end, a_set
            c.flag[j + 1], c.lexical[j + 1] = a_flag, a_lex
    for i in range(n):
        if c.lexical[i]:
            c.where[c.lexical[i] - 1] = <int>i
    # sentences that attribute a claim / are about supplying
    cdef int n_attr = 0, n_supp = 0, index
    cdef int *attributed = c.marks
    cdef int *supplied = c.marks + n
    for i in range(f.n_specials):
        k = f.specials[i]
        if f.flag[k] & F_ATTRIBUTION:
            index = <int>_sentence_index(f.sentences, f.n_sentences, f.start[k])
            attributed[n_attr] = index
            n_attr += 1
        if f.flag[k] & F_SUPPLIER:
            index = <int>_sentence_index(f.sentences, f.n_sentences, f.start[k])
            supplied[n_supp] = index
            n_supp += 1
    cdef dict sentence_memo = {}
    cdef int clause = -1, ci = -1, lo_cue = 0
    for i in range(f.n_cues + 1):
        if i < f.n_cues:
            ci = <int>_bisect_right(f.cuts, f.n_cuts, f.start[f.cues[i]]) - 1
            if ci == clause:
                continue
        if clause >= 0:
            _clause_records(
                plan, f, c, part, is_title, f.cuts[clause], f.cuts[clause + 1], lo_cue, <int>i,
                items, mstarts, sentences, questions, modifier, roles, attributed, n_attr,
                supplied, n_supp, sentence_memo, out,
            )
        if i < f.n_cues:
            clause = ci
            lo_cue = <int>i
    if f.n_specials:
        _flip_back(plan, f, out, first)


cdef void _flip_back(Plan plan, Field f, list out, Py_ssize_t first) except *:
    """`stance._refute_back` then `stance._resolved`."""
    cdef Py_ssize_t i, j
    cdef tuple r
    cdef int k, index, pos
    for i in range(f.n_specials):
        k = f.specials[i]
        if not f.flag[k] & F_REFUTE_BACK:
            continue
        index = <int>_sentence_index(f.sentences, f.n_sentences, f.start[k])
        for j in range(first, len(out)):
            r = <tuple>out[j]
            if index > 0 and r[1] == index - 1 and not r[13]:
                out[j] = _flipped(plan, r)
    for i in range(f.n_specials):
        k = f.specials[i]
        if not f.flag[k] & F_RESOLVED:
            continue
        index = <int>_sentence_index(f.sentences, f.n_sentences, f.start[k])
        pos = f.start[k]
        for j in range(first, len(out)):
            r = <tuple>out[j]
            if r[1] == index and r[14] < pos and r[3] < 0 and not r[13]:
                out[j] = _flipped(plan, r)


cdef object _flipped(Plan plan, tuple r):
    cdef list items = list(r)
    items[3] = -r[3]
    items[13] = True
    return _subtuple(plan.record_type, tuple(items))


cdef void _clause_records(
    Plan p, Field f, _Clause c, str part, bint is_title, int start, int end,
    int cue_lo, int cue_hi, tuple items, list mstarts, sentences, tuple questions,
    double field_modifier, roles, int *attributed, int n_attr, int *supplied, int n_supp,
    dict sentence_memo, list out,
) except *:
    cdef int lo = <int>_bisect_left(c.start, c.n, start)
    cdef int hi = <int>_bisect_left(c.start, c.n, end)
    cdef int i, t, tok, cue, subj = -1, n_cands = 0, n_claimed = 0
    # the cues of the clause (`_candidates`)
    for i in range(cue_lo, cue_hi):
        tok = c.where[f.cues[i]]
        if _contains(c.claimed, n_claimed, c.start[tok]):
            continue
        cue = _best_cue(p, c, lo, hi, tok, n_claimed, &subj)
        if cue == -1:
            continue
        c.c_tok[n_cands] = tok
        c.c_cue[n_cands] = cue
        c.c_subj[n_cands] = subj
        n_cands += 1
        if subj >= 0:
            c.claimed[n_claimed] = c.start[subj]
            n_claimed += 1
    if n_cands == 0:
        return
    cdef int index = <int>_sentence_index(f.sentences, f.n_sentences, start)
    sentence = sentences[index]
    # the clause's markers (`_clause_marks`)
    cdef bint hedge = False, refuted = False, company = False, driver = False
    cdef int background_from = _NO_BACKGROUND, background_until = -1
    cdef int n_after = 0, n_before = 0, n_blockers = 0
    cdef unsigned int fl
    for t in range(lo, hi):
        fl = c.flag[t]
        if not fl & F_MARK:
            continue
        if fl & F_HEDGE:
            hedge = True
        if fl & F_REFUTE:
            refuted = True
        if fl & F_BACKGROUND and c.start[t] < background_from:
            background_from = c.start[t]
        if fl & F_BACKGROUND_BEFORE and c.start[t] > background_until:
            background_until = c.start[t]
        if fl & F_COMPANY:
            company = True
        if fl & F_DRIVER:
            driver = True
        if fl & F_NEG_AFTER:
            c.neg_after[n_after] = c.start[t]
            n_after += 1
        elif fl & F_NEG_BEFORE:
            c.neg_before[n_before] = c.end[t]
            n_before += 1
    if n_after:
        for i in range(n_cands):
            if not _contains(c.neg_after, n_after, c.start[c.c_tok[i]]):
                c.blockers[n_blockers] = c.start[c.c_tok[i]]
                n_blockers += 1
    # what every cue of the clause is multiplied by (`_clause_modifier`)
    cdef double modifier = field_modifier
    if hedge:
        modifier *= p.w_hedge
    if _contains(attributed, n_attr, index):
        modifier *= p.w_attribution
    if _contains(supplied, n_supp, index):
        modifier *= p.w_supplier
    if is_title:
        modifier *= p.w_headline
        for q in questions:
            if (<tuple>q)[0] <= start < (<tuple>q)[1]:
                modifier *= p.w_question
                break
    # whose clause and sentence it is
    cdef Py_ssize_t nm = len(items)
    cdef Py_ssize_t m_lo = _mention_from(mstarts, nm, start), m_hi = _mention_from(mstarts, nm, end)
    cdef Py_ssize_t k
    clause_entities = frozenset([(<tuple>items[k])[2] for k in range(m_lo, m_hi)])
    kinds = set()
    if company:
        kinds.add(p.company_role)
    if driver:
        kinds.add(p.driver_role)
    for e in clause_entities:
        role = roles.get(e)
        if role is not None:
            kinds.add(role)
    clause_kinds = frozenset(kinds)
    s_start = (<tuple>sentence)[0]
    sentence_entities = sentence_memo.get(s_start)
    if sentence_entities is None:
        m_lo = _mention_from(mstarts, nm, s_start)
        m_hi = _mention_from(mstarts, nm, (<tuple>sentence)[1])
        sentence_entities = frozenset([(<tuple>items[k])[2] for k in range(m_lo, m_hi)])
        sentence_memo[s_start] = sentence_entities
    # the records
    cdef list found = []
    cdef int polarity, subject_actor, pos, j, best_end
    cdef tuple m
    cdef double value, weight
    cdef bint price, background, negated, any_negated = False, governed
    for i in range(n_cands):
        tok, cue, subj = c.c_tok[i], c.c_cue[i], c.c_subj[i]
        if cue >= 0:
            cue_id, polarity, weight = p.p_id[cue], p.p_polarity[cue], p.p_weight[cue]
            scope, price, subject_kinds = p.p_scope[cue], p.p_price[cue], p.p_kinds[cue]
        else:
            cue = -2 - cue
            cue_id, polarity, weight = p.ph_id[cue], p.ph_polarity[cue], p.ph_weight[cue]
            scope, price, subject_kinds = p.ph_scope[cue], p.ph_price[cue], p.no_kinds
        # whose is the subject (`_subject_of`)
        subject_entity = None
        subject_actor = 0
        owner = None
        if subj >= 0:
            fl = c.flag[subj]
            if c.set[subj] == p.mention_set:
                k = _mention_from(mstarts, nm, c.start[subj])
                if k < nm and <int>mstarts[k] < c.start[subj] + 1:
                    subject_entity = (<tuple>items[k])[2]
            elif fl & F_COMPANY:
                subject_actor = p.company_role
            elif fl & F_DRIVER:
                subject_actor = p.driver_role
            elif price:
                # the entity named just before a share-price word (`_owner`)
                pos = c.start[subj]
                best_end = -1
                m_lo = _mention_from(mstarts, nm, start if start > pos - 40 else pos - 40)
                m_hi = _mention_from(mstarts, nm, pos)
                for k in range(m_lo, m_hi):
                    m = <tuple>items[k]
                    if m[1] <= pos and pos - m[1] <= 20 and (owner is None or m[1] > best_end):
                        owner = m[2]
                        best_end = m[1]
        value = polarity * weight * modifier
        pos = c.start[tok]
        background = pos > background_from or pos < background_until
        if background:
            value *= p.w_background
        negated = False
        if n_after or n_before:
            # whether a negator of the clause governs the cue (`_negated`)
            for j in range(n_before):
                if c.neg_before[j] <= pos and pos - c.neg_before[j] <= p.neg_before_window:
                    negated = True
                    break
            if not negated:
                for j in range(n_after):
                    if c.neg_after[j] >= c.end[tok]:
                        governed = c.neg_after[j] - c.end[tok] <= p.neg_after_window
                        if governed:
                            for k in range(n_blockers):
                                if c.end[tok] <= c.blockers[k] < c.neg_after[j]:
                                    governed = False
                                    break
                        negated = governed
                        break
        if negated:
            value = -value * p.w_negated
            any_negated = True
        if refuted:
            value = -value
        found.append(
            _subtuple(
                p.record_type,
                (
                    part, index, cue_id, value, scope, subject_entity, subject_actor,
                    subject_kinds, owner, clause_entities, clause_kinds, sentence_entities,
                    negated, refuted, pos, background,
                ),
            )
        )
        c.tagged[i] = 2 * polarity if negated else polarity
    # a cue before a negated cue of the same direction is part of the negated claim
    for i in range(n_cands):
        if any_negated and not found[i][12]:
            governed = False
            for j in range(n_cands):
                if (
                    (c.tagged[j] == 2 or c.tagged[j] == -2)
                    and c.start[c.c_tok[j]] > c.start[c.c_tok[i]]
                    and c.tagged[j] == 2 * c.tagged[i]
                ):
                    governed = True
                    break
            if governed:
                continue
        out.append(found[i])


cdef class Weighing:
    """What `stance._judge` needs to weigh records for a target (one per Lexicon)."""

    cdef object products, base, cue_type
    cdef object target_name, driver_name, company_name
    cdef int target_role, driver_role, company_role
    cdef double other_company, other_company_price, implicit, implicit_elsewhere

    def __init__(self, index, weights, cue_type, roles, names):
        self.products = index.products
        self.base = index.base
        self.cue_type = cue_type
        self.target_role, self.driver_role, self.company_role = roles
        self.target_name, self.driver_name, self.company_name = names
        self.other_company = weights.other_company
        self.other_company_price = weights.other_company_price
        self.implicit = weights.implicit
        self.implicit_elsewhere = weights.implicit_elsewhere


cdef inline object _kind_name(Weighing w, int role):
    """The lexicon's name (@target / @driver / @company) of a role."""
    if role == w.target_role:
        return w.target_name
    if role == w.driver_role:
        return w.driver_name
    return w.company_name


cdef double _about(Weighing w, tuple r, frozenset own, bint leads, bint price) except? -1.0:
    """As `stance._about`."""
    cdef object subject, k
    cdef int role
    if price:
        subject = r[5]
        if subject is not None:
            if subject in w.products:
                return 0.0
            if subject in own:
                role = w.target_role
            else:
                k = w.base.get(subject)
                if k is None:
                    return 0.0
                role = k
            if _kind_name(w, role) not in r[7]:
                return 0.0
            return 1.0 if role == w.target_role else w.other_company_price
        if r[6]:
            return w.other_company_price
        if r[8] is not None:
            return 1.0 if r[8] in own else w.other_company_price
    if not own.isdisjoint(r[9]):
        return 1.0
    kinds = r[10]
    scope = r[4]
    if scope == "any" or (scope == "driver" and (w.driver_role in kinds or not kinds)):
        return 1.0
    if kinds:
        return w.other_company_price if price else w.other_company
    if not own.isdisjoint(r[11]):
        return 1.0
    return w.implicit if leads else w.implicit_elsewhere


def tally(Weighing w, tuple records, frozenset own, bint leads, cues):
    """The evidence totals of `records` for the target whose own entities are `own`
    (as the loop of `stance._judge`): pos, neg, price, context_pos, context_neg and the
    sum per (field, sentence); the weighed cues are appended to `cues` unless None."""
    cdef double pos = 0.0, neg = 0.0, price = 0.0, context_pos = 0.0, context_neg = 0.0
    cdef double base, value
    cdef bint is_price
    cdef dict per = {}
    cdef tuple r
    for item in records:
        r = <tuple>item
        base = r[3]
        is_price = r[4] == "price"
        value = base * _about(w, r, own, leads, is_price)
        if value == 0.0:
            continue
        if is_price and abs(value) >= abs(base):
            price += value
        if value > 0:
            pos += value
            if r[15]:
                context_pos += value
        else:
            neg -= value
            if r[15]:
                context_neg -= value
        key = (r[0], r[1])
        per[key] = per.get(key, 0.0) + value
        if cues is not None:
            cues.append(_subtuple(w.cue_type, (r[2], r[0], r[1], value, r[12], r[13])))
    return pos, neg, price, context_pos, context_neg, per


# ---------------------------------------------------------------------------
# records prepared once per article for the weighing of each of its targets

cdef enum:
    A_CONST = 0  # about: a constant
    A_SUBJECT = 1  # a share price whose subject is an entity: own or another's
    A_OWNER = 2  # a share price with the entity named just before it as owner
    A_CLAUSE = 3  # 1.0 when the clause names the target's own, else `rest`

cdef enum:
    R_CONST = 0  # rest: a constant
    R_SENTENCE = 1  # rest: 1.0 when the sentence names the target's own, else implicit

ctypedef unsigned long long mask_t
cdef int _MAX_ENTITIES = 64  # one bit each in a mask_t


cdef class Weighed:
    """An article's records as `tally` reads them, for `tally_prepared`: what decides
    how much a cue is about a target, with the entities of the article as bits."""

    cdef Weighing w
    cdef tuple records
    cdef Py_ssize_t n
    cdef dict bits  # entity -> its bit
    cdef list keys  # distinct (field, sentence) of the records
    cdef int n_keys
    cdef double *base
    cdef int *key
    cdef unsigned char *price
    cdef unsigned char *background
    cdef unsigned char *mode
    cdef unsigned char *rest
    cdef double *if_own  # A_SUBJECT / A_OWNER: about when the entity is the target's own
    cdef double *if_not  # ... and when not; A_CONST: the constant; A_CLAUSE: `rest` const
    cdef mask_t *entity  # A_SUBJECT / A_OWNER: the entity's bit
    cdef mask_t *clause
    cdef mask_t *sentence

    def __cinit__(self):
        self.n = 0

    def __dealloc__(self):
        free(self.base)
        free(self.key)
        free(self.price)
        free(self.background)
        free(self.mode)
        free(self.rest)
        free(self.if_own)
        free(self.if_not)
        free(self.entity)
        free(self.clause)
        free(self.sentence)

    cdef int _bit(self, object entity) except -2:
        """The entity's bit (a new one if need be), or -1 when there are too many."""
        b = self.bits.get(entity)
        if b is not None:
            return <int>b
        if len(self.bits) >= _MAX_ENTITIES:
            return -1
        b = len(self.bits)
        self.bits[entity] = b
        return <int>b

    cdef int _mask(self, object entities, mask_t *out) except -2:
        cdef mask_t m = 0
        cdef int b
        for e in entities:
            b = self._bit(e)
            if b < 0:
                return -1
            m |= (<mask_t>1) << b
        out[0] = m
        return 0


cdef void *_alloc(Py_ssize_t n, size_t size) except NULL:
    cdef void *p = malloc((n if n > 0 else 1) * size)
    if p == NULL:
        raise MemoryError()
    return p


def prepare(Weighing w, tuple records):
    """The records of one article ready for `tally_prepared`, or None when they name
    too many entities for the masks or a field other than the title and the body
    (`tally` then weighs them as they are)."""
    cdef Weighed p = Weighed.__new__(Weighed)
    cdef Py_ssize_t n = len(records), i
    cdef int b, role, sentence, top = 0, slot
    cdef int *key_at = NULL  # 2 * sentence + (field is the body) -> key index, or -1
    cdef bint price
    cdef tuple r
    cdef object subject, k, kinds, scope
    p.w = w
    p.records = records
    p.bits = {}
    p.keys = []
    p.base = <double *>_alloc(n, sizeof(double))
    p.key = <int *>_alloc(n, sizeof(int))
    p.price = <unsigned char *>_alloc(n, 1)
    p.background = <unsigned char *>_alloc(n, 1)
    p.mode = <unsigned char *>_alloc(n, 1)
    p.rest = <unsigned char *>_alloc(n, 1)
    p.if_own = <double *>_alloc(n, sizeof(double))
    p.if_not = <double *>_alloc(n, sizeof(double))
    p.entity = <mask_t *>_alloc(n, sizeof(mask_t))
    p.clause = <mask_t *>_alloc(n, sizeof(mask_t))
    p.sentence = <mask_t *>_alloc(n, sizeof(mask_t))
    p.n = n
    for i in range(n):
        r = <tuple>records[i]
        if r[0] != "title" and r[0] != "body":
            return None  # keyed as they are by `tally`
        sentence = r[1]
        if sentence < 0:
            raise ValueError("a record with a negative sentence index")
        if sentence > top:
            top = sentence
    key_at = <int *>_alloc(2 * top + 2, sizeof(int))
    try:
        for i in range(2 * top + 2):
            key_at[i] = -1
        for i in range(n):
            r = <tuple>records[i]
            slot = 2 * <int>r[1] + (r[0] != "title")
            if key_at[slot] < 0:
                key_at[slot] = <int>len(p.keys)
                p.keys.append((r[0], r[1]))
            p.key[i] = key_at[slot]
    finally:
        free(key_at)
    for i in range(n):
        r = <tuple>records[i]
        p.base[i] = r[3]
        price = r[4] == "price"
        p.price[i] = price
        p.background[i] = bool(r[15])
        p.entity[i] = 0
        p.clause[i] = 0
        p.sentence[i] = 0
        p.if_own[i] = 0.0
        p.if_not[i] = 0.0
        p.rest[i] = R_CONST
        # as `_about`, with what depends on the target left to `tally_prepared`
        if price:
            subject = r[5]
            if subject is not None:
                if subject in w.products:
                    p.mode[i] = A_CONST
                    continue
                p.mode[i] = A_SUBJECT
                b = p._bit(subject)
                if b < 0:
                    return None
                p.entity[i] = (<mask_t>1) << b
                p.if_own[i] = 1.0 if w.target_name in r[7] else 0.0
                k = w.base.get(subject)
                if k is not None:
                    role = k
                    if _kind_name(w, role) in r[7]:
                        p.if_not[i] = 1.0 if role == w.target_role else w.other_company_price
                continue
            if r[6]:
                p.mode[i] = A_CONST
                p.if_not[i] = w.other_company_price
                continue
            if r[8] is not None:
                p.mode[i] = A_OWNER
                b = p._bit(r[8])
                if b < 0:
                    return None
                p.entity[i] = (<mask_t>1) << b
                p.if_own[i] = 1.0
                p.if_not[i] = w.other_company_price
                continue
        p.mode[i] = A_CLAUSE
        if p._mask(r[9], &p.clause[i]) < 0:
            return None
        kinds = r[10]
        scope = r[4]
        if scope == "any" or (scope == "driver" and (w.driver_role in kinds or not kinds)):
            p.if_not[i] = 1.0
        elif kinds:
            p.if_not[i] = w.other_company_price if price else w.other_company
        else:
            p.rest[i] = R_SENTENCE
            if p._mask(r[11], &p.sentence[i]) < 0:
                return None
    p.n_keys = <int>len(p.keys)
    return p


def tally_prepared(Weighed p, frozenset own, bint leads, cues):
    """`tally(w, records, own, leads, cues)` of the records `p` was prepared from."""
    cdef Weighing w = p.w
    cdef double pos = 0.0, neg = 0.0, price = 0.0, context_pos = 0.0, context_neg = 0.0
    cdef double base, value, about
    cdef double implicit = w.implicit if leads else w.implicit_elsewhere
    cdef mask_t mine = 0
    cdef Py_ssize_t i
    cdef int k, n_seen = 0, mode
    cdef tuple r
    cdef double *sums = <double *>_alloc(p.n_keys, sizeof(double))
    cdef int *order = <int *>_alloc(p.n_keys, sizeof(int))
    cdef unsigned char *seen = <unsigned char *>_alloc(p.n_keys, 1)
    cdef dict per = {}
    try:
        for e in own:
            b = p.bits.get(e)
            if b is not None:
                mine |= (<mask_t>1) << <int>b
        for k in range(p.n_keys):
            seen[k] = 0
        for i in range(p.n):
            mode = p.mode[i]
            if mode == A_CLAUSE:
                if mine & p.clause[i]:
                    about = 1.0
                elif p.rest[i] == R_CONST:
                    about = p.if_not[i]
                elif mine & p.sentence[i]:
                    about = 1.0
                else:
                    about = implicit
            elif mode == A_CONST:
                about = p.if_not[i]
            else:  # A_SUBJECT, A_OWNER
                about = p.if_own[i] if mine & p.entity[i] else p.if_not[i]
            base = p.base[i]
            value = base * about
            if value == 0.0:
                continue
            if p.price[i] and fabs(value) >= fabs(base):
                price += value
            if value > 0:
                pos += value
                if p.background[i]:
                    context_pos += value
            else:
                neg -= value
                if p.background[i]:
                    context_neg -= value
            k = p.key[i]
            if seen[k]:
                sums[k] += value
            else:
                seen[k] = 1
                sums[k] = 0.0 + value
                order[n_seen] = k
                n_seen += 1
            if cues is not None:
                r = <tuple>p.records[i]
                cues.append(_subtuple(w.cue_type, (r[2], r[0], r[1], value, r[12], r[13])))
        for i in range(n_seen):
            k = order[i]
            per[p.keys[k]] = sums[k]
    finally:
        free(sums)
        free(order)
        free(seen)
    return pos, neg, price, context_pos, context_neg, per
