"""Chinese person-name parsing for matching: surname/given split, pinyin, nickname detection.

:func:`parse_name` turns a raw name as found in any source (CRM, WeChat nickname, English-form
event sign-up) into a :class:`ParsedName`:

* ``full`` — the normalised full name (simplified, no whitespace) or None when the value is only a
  nickname (张医生, 李主任, Dr. Wang), an English given name alone ("Tony") or decoration;
* ``surname`` / ``given`` (CJK), ``surname_py`` / ``given_py`` (pinyin, tone-less, ü as ``v``);
* ``py_key`` — order-insensitive pinyin token form: the surname reading and the joined given-name
  reading, sorted and joined by one space. 张伟, 張偉, "Wei Zhang", "ZHANG Wei", "zhang wei" and
  "zhangwei" all give ``"wei zhang"``; homophones (张伟/张威) share the key;
* ``partial`` — True for nickname patterns; then ``surname_py`` holds the surname only.

Polyphonic surnames are read with :data:`SURNAME_READINGS` (曾 zeng, 单 shan, 仇 qiu, 解 xie ...);
compound surnames (欧阳, 司马, 诸葛 ...) are recognised. The function never raises.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pypinyin
from pypinyin.pinyin_dict import pinyin_dict

from medscrm.schema.person import normalize_name

__all__ = [
    "name_in_remark",
    "COMPOUND_SURNAMES",
    "NICKNAME_WORDS",
    "SURNAME_READINGS",
    "ParsedName",
    "parse_name",
    "pinyin_of",
    "surname_pinyin",
]

COMPOUND_SURNAMES: frozenset[str] = frozenset(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "令狐",
        "长孙",
        "宇文",
        "司徒",
        "司空",
        "夏侯",
        "轩辕",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "澹台",
        "万俟",
        "闻人",
        "赫连",
        "申屠",
        "太史",
        "钟离",
        "淳于",
        "单于",
        "濮阳",
        "公羊",
        "公冶",
        "左丘",
        "第五",
        "东郭",
        "拓跋",
        "完颜",
        "乐正",
        "漆雕",
        "壤驷",
        "公良",
        "谷梁",
        "宰父",
        "巫马",
        "羊舌",
        "梁丘",
        "司寇",
        "亓官",
        "仲孙",
        "鲜于",
        "闾丘",
        "子车",
        "颛孙",
        "段干",
        "呼韩",
    ]
)

#: Surname readings where pypinyin's default (the common-word reading) is wrong for a surname.
SURNAME_READINGS: dict[str, str] = {
    "曾": "zeng",
    "单": "shan",
    "仇": "qiu",
    "解": "xie",
    "区": "ou",
    "查": "zha",
    "乐": "yue",
    "朴": "piao",
    "盖": "ge",
    "尉": "wei",
    "召": "shao",
    "缪": "miao",
    "翟": "zhai",
    "秘": "bi",
    "种": "chong",
    "冼": "xian",
    "洗": "xian",
    "折": "she",
    "员": "yun",
    "句": "gou",
    "繁": "po",
    "那": "na",
    "覃": "qin",
    "宓": "mi",
    "暴": "bao",
    "隗": "wei",
    "逄": "pang",
    "黑": "he",
    "谌": "chen",
    "莘": "shen",
    "訾": "zi",
    "纪": "ji",
    "任": "ren",
    "华": "hua",
    "费": "fei",
    "燕": "yan",
    "应": "ying",
    "柏": "bai",
    "贲": "ben",
    "薄": "bo",
    "褚": "chu",
    "臧": "zang",
    "宁": "ning",
    "都": "du",
    "郇": "huan",
    "重": "chong",
    "藏": "zang",
    "葛": "ge",
    "卜": "bu",
    "阚": "kan",
    "角": "jue",
    "厍": "she",
    "过": "guo",
    "朝": "chao",
    "么": "yao",
    "能": "nai",
    "相": "xiang",
    "曲": "qu",
    "长": "chang",
    "沈": "shen",
    "石": "shi",
    "汤": "tang",
    "万": "wan",
    "秦": "qin",
    "车": "che",
    "和": "he",
    "祭": "zhai",
    "缴": "jiao",
    "广": "guang",
    "六": "lu",
    "适": "kuo",
    "期": "ji",
    "强": "qiang",
    "降": "jiang",
    "传": "chuan",
    "率": "lv",
    "区域": "ou",
    "尉迟": "yuchi",
    "万俟": "moqi",
    "长孙": "zhangsun",
    "单于": "chanyu",
    "澹台": "tantai",
    "乐正": "yuezheng",
    "令狐": "linghu",
    "亓官": "qiguan",
    "仲孙": "zhongsun",
    "宰父": "zaifu",
    "呼延": "huyan",
    "皇甫": "huangfu",
    "夏侯": "xiahou",
    "闾丘": "lvqiu",
    "鲜于": "xianyu",
}

_COMMON_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄"
    "窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池"
    "查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阎练索"
)

_NICK_SUFFIXES = (
    "医生",
    "大夫",
    "主任",
    "教授",
    "老师",
    "博士",
    "院长",
    "医师",
    "主治",
    "护士",
    "药师",
    "护士长",
    "副主任",
    "副教授",
    "院士",
    "专家",
    "老",
    "总",
    "姐",
    "哥",
    "先生",
    "女士",
    "小姐",
    "大姐",
    "师傅",
    "主任医师",
    "副主任医师",
    "主治医师",
    "住院医师",
    "主管护师",
    "副院长",
    "科长",
    "部长",
    "处长",
    "同学",
)
_NICK_SUFFIX_RE = re.compile(
    "(?:" + "|".join(sorted(map(re.escape, _NICK_SUFFIXES), key=len, reverse=True)) + ")$"
)
_NICK_PREFIX_RE = re.compile("^(?:小|老|阿)")
_LATIN_TITLE_RE = re.compile(r"^(?:dr|doctor|prof|professor|mr|mrs|ms|miss|dear)\b\.?\s*", re.I)
_LATIN_DEGREE_RE = re.compile(r"(?:[\s,]+(?:m\.?d|ph\.?d|dr|prof|mbbs|m\.?sc|fccp|facc|facs)\.?)+\s*$", re.I)
_CJK_RUN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f·]+")
_BRACKETS_RE = re.compile(r"[(\[（【<《{].*?[)\]）】>》}]")
_SEP_RE = re.compile(r"\s*[-—–_/|~]+\s*")
_LATIN_SPLIT_RE = re.compile(r"[^a-z]+")
_UMLAUT = str.maketrans({"ü": "v", "ǖ": "v", "ǘ": "v", "ǚ": "v", "ǜ": "v"})


@dataclass(frozen=True)
class ParsedName:
    full: str | None = None  # normalised full name (None for nicknames / unusable names)
    surname: str | None = None  # CJK surname (None for Latin-script input)
    given: str | None = None
    surname_py: str | None = None
    given_py: str | None = None
    py_key: str | None = None  # order-insensitive pinyin token form
    partial: bool = False  # a nickname pattern: only the surname is known
    nick: str | None = None  # given-name diminutive (小梅, 伟伟, 阿芳 → 梅 / 伟 / 芳): CJK characters


_EMPTY = ParsedName()


@lru_cache(maxsize=1)
def _pinyin_module():
    return pypinyin


def _strip_tones(s: str) -> str:
    s = s.translate(_UMLAUT)
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c)).lower()


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    out: set[str] = set()
    for readings in pinyin_dict.values():
        for r in readings.split(","):
            t = _strip_tones(r)
            if t.isascii() and t.isalpha():
                out.add(t)
    out.discard("")
    return frozenset(out)


@lru_cache(maxsize=1)
def _surname_syllables() -> frozenset[str]:
    out = {surname_pinyin(c) for c in _COMMON_SURNAMES}
    out |= {surname_pinyin(c) for c in COMPOUND_SURNAMES}
    out |= {"lyu", "chan", "cheung", "wong", "lee", "ng", "ho", "chow", "lau", "leung", "tsang", "yeung"}
    return frozenset(x for x in out if x)


@lru_cache(maxsize=65536)
def pinyin_of(text: str) -> str:
    """Tone-less pinyin of CJK text, syllables joined without spaces (ü → v)."""
    if not text:
        return ""
    pp = _pinyin_module()
    parts = pp.lazy_pinyin(text, style=pp.Style.NORMAL, errors="ignore", v_to_u=False)
    return "".join(_strip_tones(p) for p in parts if p)


@lru_cache(maxsize=4096)
def surname_pinyin(surname: str) -> str:
    """The reading of a surname (the surname table first, then pypinyin per character)."""
    if surname in SURNAME_READINGS:
        return SURNAME_READINGS[surname]
    return "".join(SURNAME_READINGS.get(ch) or pinyin_of(ch) for ch in surname)


def _split_cjk(name: str) -> tuple[str, str]:
    if "·" in name:  # minority / transliterated names: 买买提·艾力 — the last part is the family name
        parts = [p for p in name.split("·") if p]
        if len(parts) >= 2:
            return parts[-1], "".join(parts[:-1])
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


def _key(surname_py: str, given_py: str) -> str:
    return " ".join(sorted(t for t in (surname_py, given_py) if t))


def _is_syllable_seq(s: str, max_syll: int = 4) -> bool:
    syl = _syllables()
    n = len(s)
    if not n:
        return False
    best = [None] * (n + 1)
    best[0] = 0
    for i in range(n):
        if best[i] is None or best[i] >= max_syll:
            continue
        for j in range(i + 1, min(n, i + 6) + 1):
            if s[i:j] in syl and (best[j] is None or best[j] > best[i] + 1):
                best[j] = best[i] + 1
    return best[n] is not None


def _parse_latin(text: str) -> ParsedName:
    had_title = bool(_LATIN_TITLE_RE.match(text.strip()))
    raw = _LATIN_TITLE_RE.sub("", text.strip())
    raw2 = _LATIN_DEGREE_RE.sub("", raw)
    if raw2 != raw:
        raw, had_title = raw2, True
    tokens_cased = [t for t in re.split(r"[^A-Za-zü]+", raw) if t]
    tokens = [_strip_tones(t) for t in tokens_cased]
    tokens = ["lv" if t == "lyu" else t for t in tokens]
    if not tokens:
        return _EMPTY
    sur = _surname_syllables()
    if len(tokens) == 1:
        t = tokens[0]
        if had_title:  # "Dr. Wang": the surname only
            return ParsedName(surname_py=t, partial=True) if t in sur else _EMPTY
        # "zhangwei" / "sunhui": a known surname + a valid pinyin remainder
        for k in (6, 5, 4, 3, 2, 1):
            if len(t) > k + 1 and t[:k] in sur and _is_syllable_seq(t[k:], 3):
                return ParsedName(
                    full=normalize_name(raw), surname_py=t[:k], given_py=t[k:], py_key=_key(t[:k], t[k:])
                )
        return _EMPTY  # "Tony", "Sunshine": not a name we can match on
    if len(tokens) > 4 or not all(_is_syllable_seq(t, 4) for t in tokens):
        return _EMPTY
    upper = [i for i, t in enumerate(tokens_cased) if len(t) > 1 and t.isupper()]
    if len(upper) == 1 and len(tokens) > 1 and len(upper) < len(tokens):
        si = upper[0]
    elif tokens[0] in sur and tokens[-1] not in sur:
        si = 0
    elif tokens[-1] in sur and tokens[0] not in sur:
        si = len(tokens) - 1
    elif len(tokens) == 2:
        si = len(tokens) - 1  # ambiguous two tokens: the key is order-insensitive anyway
    else:
        si = 0 if tokens[0] in sur else len(tokens) - 1
    surname_py = tokens[si]
    given_py = "".join(t for i, t in enumerate(tokens) if i != si)
    return ParsedName(
        full=normalize_name(raw), surname_py=surname_py, given_py=given_py, py_key=_key(surname_py, given_py)
    )


def _strip_honorifics(name: str) -> str:
    """Drop trailing honorific / title words (张伟主任医师 → 张伟, 张医生 → 张); at most two."""
    for _ in range(2):
        m = _NICK_SUFFIX_RE.search(name)
        if not m or m.start() == 0:
            break
        name = name[: m.start()]
    return name


#: Popular WeChat nickname words that happen to start with a surname character (向日葵, 阳光明媚):
#: never a person's name.
NICKNAME_WORDS: frozenset[str] = frozenset(
    [
        "向日葵",
        "阳光",
        "阳光明媚",
        "简单",
        "平安",
        "平安是福",
        "快乐",
        "幸福",
        "开心",
        "白衣",
        "白衣天使",
        "行者",
        "小确幸",
        "海阔天空",
        "静待花开",
        "岁月静好",
        "云淡风轻",
        "随缘",
        "知足常乐",
        "淡泊明志",
        "花开半夏",
        "微笑",
        "晴天",
        "明天会更好",
        "顺其自然",
        "心如止水",
        "一路有你",
        "上善若水",
        "宁静致远",
        "天道酬勤",
        "江南",
        "田园",
        "春暖花开",
        "向阳",
        "向往",
        "安静",
        "安然",
        "海阔",
        "温暖",
    ]
)


def _diminutive(name: str) -> str | None:
    """The given-name core of a diminutive nickname: 小梅 → 梅, 阿芳 → 芳, 伟伟 → 伟, 梅子 → 梅."""
    if len(name) == 2 and name[0] in "小阿":
        return name[1]
    if len(name) == 2 and name[0] == name[1]:
        return name[0]
    if len(name) == 2 and name[1] in "子儿" and name[0] not in _COMMON_SURNAMES:
        return name[0]
    return None


def _parse_cjk(name: str) -> ParsedName:
    if name in NICKNAME_WORDS:
        return _EMPTY
    dim = _diminutive(name)
    if dim is not None:
        if name[0] in "小阿" and name[1] in _COMMON_SURNAMES:  # 小张 / 小梅: a surname or a given name
            return ParsedName(surname=name[1], surname_py=surname_pinyin(name[1]), partial=True, nick=dim)
        return ParsedName(nick=dim)
    # honorific / title suffixes: 张医生, 李主任 (surname only: a nickname), 张伟医生, 韩东子主任医师
    # (a full name followed by a title: the full name)
    stem = _strip_honorifics(name)
    if stem != name:
        if len(stem) == 1 or stem in COMPOUND_SURNAMES:
            return ParsedName(surname=stem, surname_py=surname_pinyin(stem), partial=True)
        if 2 <= len(stem) <= 4:
            sur, _given = _split_cjk(stem)
            if sur in _COMMON_SURNAMES or sur in COMPOUND_SURNAMES:
                return _parse_cjk_full(stem)
        if _NICK_PREFIX_RE.match(stem) and len(stem) == 2 and stem[1] in _COMMON_SURNAMES:
            return ParsedName(surname=stem[1], surname_py=surname_pinyin(stem[1]), partial=True)
        return _EMPTY  # 阳光医生, 快乐老师: a title after a word that is not a name
    if len(name) == 2 and _NICK_PREFIX_RE.match(name) and name[1] in _COMMON_SURNAMES:
        return ParsedName(surname=name[1], surname_py=surname_pinyin(name[1]), partial=True)
    if len(name) < 2:
        return (
            ParsedName(surname=name, surname_py=surname_pinyin(name), partial=True)
            if (name in _COMMON_SURNAMES)
            else _EMPTY
        )
    if len(name) > 6 and "·" not in name:
        return _EMPTY  # a phrase (淡泊明志 style nicknames are ≤ 4, longer runs are not names)
    return _parse_cjk_full(name)


def _parse_cjk_full(name: str) -> ParsedName:
    surname, given = _split_cjk(name)
    # not a known surname (淡泊明志, 阳光明媚): keep it as a full name only if it is short enough
    if (
        surname not in _COMMON_SURNAMES
        and surname not in COMPOUND_SURNAMES
        and "·" not in name
        and len(name) > 3
    ):
        return _EMPTY
    sp = surname_pinyin(surname)
    gp = pinyin_of(given)
    return ParsedName(
        full=name, surname=surname, given=given, surname_py=sp, given_py=gp, py_key=_key(sp, gp)
    )


@lru_cache(maxsize=262144)
def parse_name(raw: object) -> ParsedName:
    """Parse a raw name (never raises); see the module docstring."""
    try:
        if raw is None or not isinstance(raw, str):
            return _EMPTY
        text = unicodedata.normalize("NFKC", raw)
        text = _BRACKETS_RE.sub(" ", text)
        cjk = _CJK_RUN_RE.findall(text)
        if cjk:
            # "孟梅青-华山医院老年科": the part before a separator; "陈 露嘉": spaced CJK
            head = _SEP_RE.split(text.strip())[0] if _SEP_RE.search(text) else text
            runs = _CJK_RUN_RE.findall(head) or cjk
            name = normalize_name("".join(runs)) or ""
            name = "".join(_CJK_RUN_RE.findall(name))
            name = name.strip("·")
            if not name:
                return _EMPTY
            return _parse_cjk(name)
        if not any(c.isalpha() for c in text):
            return _EMPTY
        return _parse_latin(text)
    except Exception:  # noqa: BLE001 - a name that cannot be parsed is simply not a name
        return _EMPTY


#: Professional titles written after a name in remarks (beside the honorifics of :data:`_NICK_SUFFIXES`).
_REMARK_TITLE_RE = re.compile(
    "(?:副?主任(?:医生|护师|药师)|主管(?:护师|药师)|主治医生|住院医生|护师|药师|讲师|研究员|医学博士)$"
)


def _is_surname(s: str) -> bool:
    return s in COMPOUND_SURNAMES or (len(s) == 1 and s in _COMMON_SURNAMES)


@lru_cache(maxsize=65536)
def name_in_remark(piece: str) -> ParsedName:
    """A person's name in one CJK piece of a rep's free-text remark (hospital / department words
    already removed): stricter than :func:`parse_name` — the surname must be in the surname tables
    and the given name 1–2 characters. "张伟主任" / "李娜" → full; "王主任" → surname only
    (``partial``); a longer run ending in an honorific ("某某院韩军主治医师") gives the name just
    before it when the surname position is unambiguous. Anything else → empty."""
    if not piece or piece in NICKNAME_WORDS:
        return _EMPTY
    stem = _strip_honorifics(_REMARK_TITLE_RE.sub("", piece) or piece)
    titled = stem != piece
    if not stem or stem in NICKNAME_WORDS:
        return _EMPTY
    if _is_surname(stem):
        # a surname alone is a name only with an honorific (王主任); 王 alone is not
        return ParsedName(surname=stem, surname_py=surname_pinyin(stem), partial=True) if titled else _EMPTY
    if stem[:2] in COMPOUND_SURNAMES and len(stem) in (3, 4):
        return _parse_cjk_full(stem)
    if 2 <= len(stem) <= 3 and stem[0] in _COMMON_SURNAMES:
        return _parse_cjk_full(stem)
    if titled and len(stem) > 3:
        # the name is the tail before the honorific: surname + 1-2 given characters; take it only
        # when exactly one of the two readings starts with a known surname
        three = stem[-3] in _COMMON_SURNAMES
        two = stem[-2] in _COMMON_SURNAMES
        if three != two:
            return _parse_cjk_full(stem[-3:] if three else stem[-2:])
    return _EMPTY
