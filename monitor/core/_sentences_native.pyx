# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Native sentence splitter: `split_sentences` and `split_headline` of
`monitor/core/sentences.py` in C.

sentences.py holds the reference (a regular expression tried at every terminal mark)
and uses this module when setup.py has built it. The two must cut every text at the
same places; tests/test_compiled_sentences.py compares them over corpora and random
strings. What the expression says, step by step, for a mark at `i`:

- `!`, `?`, `…`, `。` start a run of marks; a `.` followed by another mark does too;
- a lone `.` must not close an abbreviation (`\\bu\\.s\\.`, case-insensitive as `re`
  matches it: `İ`, `ı` match `i`, `ſ` matches `s`, the Kelvin sign matches `k`), nor a
  capital initial (`\\b[A-HJ-Z]\\.`), nor be followed by whitespace and `[a-z]`;
- closing quotes and brackets may follow; then whitespace (`str.isspace`) or the end.

The abbreviation test runs only where the two characters before the period, lower-
cased as `str.lower` does, end an abbreviation (as the reference chooses its pattern).
"""

from cpython.unicode cimport (
    Py_UNICODE_ISALNUM,
    Py_UNICODE_ISSPACE,
    PyUnicode_DATA,
    PyUnicode_KIND,
    PyUnicode_READ,
)

include "_tuples.pxi"


cdef inline void _add_stripped(
    list spans, object span, str text, int kind, void *data, Py_ssize_t a, Py_ssize_t b
):
    """Append text[a:b] without its surrounding whitespace as a span, unless empty."""
    while a < b and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, a)):
        a += 1
    while b > a and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, b - 1)):
        b -= 1
    if b > a:
        spans.append(_subtuple(span, (a, b, text[a:b])))


cdef inline bint _is_mark(Py_UCS4 ch) noexcept nogil:
    return ch == u'.' or ch == u'!' or ch == u'?' or ch == 0x2026 or ch == 0x3002


cdef inline bint _is_closer(Py_UCS4 ch) noexcept nogil:
    return (
        ch == u'"' or ch == u"'" or ch == 0x201D or ch == 0x2019 or ch == 0x300D
        or ch == 0x300F or ch == u')' or ch == u']'
    )


cdef inline bint _is_word(Py_UCS4 ch) noexcept:
    return ch == u'_' or Py_UNICODE_ISALNUM(ch)


cdef inline int _ascii_lower(Py_UCS4 ch) noexcept nogil:
    """The ASCII character `str.lower` makes of `ch` alone, or -1 (none, or not one)."""
    cdef int c = <int>ch
    if c < 128:
        return c + 32 if 65 <= c <= 90 else c  # A-Z
    if ch == 0x212A:  # KELVIN SIGN
        return u'k'
    return -1


cdef inline bint _same_letter(Py_UCS4 ch, Py_UCS4 want) noexcept nogil:
    """Whether `re` with IGNORECASE matches `ch` to the lower-case ASCII `want`."""
    cdef int c = <int>ch
    if c < 128:
        if 65 <= c <= 90:  # A-Z
            c += 32
        return c == <int>want
    if want == u'i':
        return ch == 0x130 or ch == 0x131
    if want == u's':
        return ch == 0x17F
    if want == u'k':
        return ch == 0x212A
    return False


cdef class Splitter:
    """Splits texts as `sentences.split_sentences` does, for one abbreviation list."""

    cdef object span_type
    cdef unsigned char tails[128][128]  # the last two characters of an abbreviation
    cdef dict by_tail  # 128 * x + y -> the abbreviations that end in x, y

    def __init__(self, abbreviations, span_type):
        cdef str a
        cdef Py_ssize_t m
        cdef int x, y
        self.span_type = span_type
        self.by_tail = {}
        for x in range(128):
            for y in range(128):
                self.tails[x][y] = 0
        for a in abbreviations:
            m = len(a)  # (no negative indices here: wraparound is off)
            if m < 2 or not a.isascii() or a != a.lower():
                raise ValueError(f"abbreviation {a!r}: lower-case ASCII, two characters at least")
            x, y = ord(a[m - 2]), ord(a[m - 1])
            self.tails[x][y] = 1
            self.by_tail.setdefault(128 * x + y, []).append(a)

    cdef bint _abbreviation_before(self, int kind, void *data, Py_ssize_t i, int tail):
        """Whether the period at `i` closes an abbreviation (`\\b<a>\\.` ends at i+1);
        `tail` is the key in `by_tail` of the two characters before it."""
        cdef str a
        cdef Py_ssize_t p, k, m
        cdef Py_UCS4 want
        for a in self.by_tail[tail]:
            m = len(a)
            p = i - m
            if p < 0:
                continue
            if p > 0 and _is_word(PyUnicode_READ(kind, data, p - 1)):
                continue
            for k in range(m):
                want = a[k]
                if want == u'.':
                    if PyUnicode_READ(kind, data, p + k) != u'.':
                        break
                elif not _same_letter(PyUnicode_READ(kind, data, p + k), want):
                    break
            else:
                return True
        return False

    cdef Py_ssize_t _end(self, int kind, void *data, Py_ssize_t i, Py_ssize_t n):
        """Where the sentence that ends at the mark at `i` ends, or -1."""
        cdef Py_UCS4 ch = PyUnicode_READ(kind, data, i), c
        cdef Py_ssize_t j = i + 1
        cdef int x, y
        if ch != u'.' or (j < n and _is_mark(PyUnicode_READ(kind, data, j))):
            while j < n and _is_mark(PyUnicode_READ(kind, data, j)):
                j += 1
        else:
            if i > 1:
                x = _ascii_lower(PyUnicode_READ(kind, data, i - 2))
                y = _ascii_lower(PyUnicode_READ(kind, data, i - 1))
                if x >= 0 and y >= 0 and self.tails[x][y]:
                    if self._abbreviation_before(kind, data, i, 128 * x + y):
                        return -1
            if i > 0:
                c = PyUnicode_READ(kind, data, i - 1)
                if u'A' <= c <= u'Z' and c != u'I':
                    if i == 1 or not _is_word(PyUnicode_READ(kind, data, i - 2)):
                        return -1
            while j < n and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, j)):
                j += 1
            if j > i + 1 and j < n:
                c = PyUnicode_READ(kind, data, j)
                if u'a' <= c <= u'z':
                    return -1
            j = i + 1
        while j < n and _is_closer(PyUnicode_READ(kind, data, j)):
            j += 1
        if j < n and not Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, j)):
            return -1
        return j

    def split(self, str text):
        """`split_sentences(text)`: Spans with offsets into `text`."""
        cdef list spans = []
        cdef Py_ssize_t n = len(text), i = 0, begin = 0, k, s
        cdef int kind = PyUnicode_KIND(text)
        cdef void *data = PyUnicode_DATA(text)
        cdef object span = self.span_type
        while i < n:
            if not _is_mark(PyUnicode_READ(kind, data, i)):
                i += 1
                continue
            k = self._end(kind, data, i, n)
            if k < 0:
                i += 1
                continue
            s = begin
            while Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, s)):
                s += 1
            spans.append(_subtuple(span, (s, k, text[s:k])))
            begin = i = k
        _add_stripped(spans, span, text, kind, data, begin, n)
        return spans

    def headline(self, str title):
        """`split_headline(title)`: the clauses between `…`, `...`, `;`, ` - ` and ` | `.

        As the reference's `\\s*(?:…+|\\.{3,}|;|\\s-\\s|\\s\\|\\s)\\s*`, searched left to
        right: a break starts at a run of whitespace (or none) that is followed by `…`,
        three dots or `;`, or, after at least one whitespace, by `-` or `|` and more
        whitespace; it ends after the whitespace that follows."""
        cdef list spans = []
        cdef Py_ssize_t n = len(title), s = 0, e, j, begin = 0
        cdef int kind = PyUnicode_KIND(title)
        cdef void *data = PyUnicode_DATA(title)
        cdef object span = self.span_type
        cdef Py_UCS4 c
        while s < n:
            e = s
            while e < n and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, e)):
                e += 1
            j = -1  # where the break's separator ends
            if e < n:
                c = PyUnicode_READ(kind, data, e)
                if c == 0x2026:  # …
                    j = e + 1
                    while j < n and PyUnicode_READ(kind, data, j) == 0x2026:
                        j += 1
                elif c == u';':
                    j = e + 1
                elif c == u'.':
                    j = e
                    while j < n and PyUnicode_READ(kind, data, j) == u'.':
                        j += 1
                    if j - e < 3:
                        j = -1
                elif (c == u'-' or c == u'|') and e > s and e + 1 < n:
                    if Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, e + 1)):
                        j = e + 2
            if j < 0:
                # no break starts in s..e: the next try is past the whitespace, or one on
                s = e if e > s else s + 1
                continue
            while j < n and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, j)):
                j += 1
            _add_stripped(spans, span, title, kind, data, begin, s)  # the clause before
            begin = s = j
        _add_stripped(spans, span, title, kind, data, begin, n)
        return spans
