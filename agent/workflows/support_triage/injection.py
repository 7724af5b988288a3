"""Does a ticket try to instruct the triage agent? Structural signals, not phrases.

The policy is the guarantee (no ticket text can change what the agent may do); this is the
reviewer's warning. It looks for the *shapes* an injection takes, whatever its wording:

- hidden content: Unicode tag characters, zero-width characters splitting words, HTML comments
  and invisible styling, and base64, hex or ROT13 text, each decoded and read like the rest;
- the grammar of a conversation with a model: role lines (``system:``, ``[INST]``), fake tags
  (``</ticket><system>``), calls to the workflow's own tools and tool-call or tool-result JSON;
- what an injection asks for, in English, Spanish, German and French: to override the agent's
  instructions, to reveal its prompt, tools or secrets, or to set its output (``classify this as
  urgent``, ``write in the note that...``), and whether the text addresses an AI at all.

A strong signal is enough; weak ones (a role line that reads like a log line, a generic
function call, an AI addressee) count only together. Ordinary tickets that use the same words
("ignore my previous email", "our admin mode toggle", a quoted ``SYSTEM: sync failed``) carry
none of these structures, or only one weak one.
"""

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

_I: Final = re.IGNORECASE

# --- what an instruction to the agent asks for ------------------------------------------------

# Addressing an AI: the noun, in the four languages, and vocative or conditional uses of it.
_AI_NOUN: Final = (
    r"(a\.?i\.?|ai\s+(agent|assistant|model|system)|artificial\s+intelligence|llm|gpt|chat\s*bot|"
    r"bot|language\s+model|(virtual|automated|digital|triage)\s+(assistant|agent)|"
    r"ia|i\.a\.|asistente(\s+virtual)?|modelo\s+de\s+lenguaje|inteligencia\s+artificial|"
    r"ki|k\.i\.|sprachmodell|ki-(assistent|system|agent|modell)|kunstliche\s+intelligenz|"
    r"assistant(e)?\s+(virtuel(le)?|ia)|modele\s+de\s+langage|intelligence\s+artificielle)"
)
ADDRESSED_TO_AI: Final = re.compile(
    rf"(^|[\n.!?]\s*|\b(hey|hi|hello|dear|attention|note\s+to|to|hola|querid[oa]|estimad[oa]|"
    rf"hallo|liebe[rs]?|an\s+(die|das|den)|cher|chere|bonjour)\s+(the\s+|el\s+|la\s+|die\s+|"
    rf"das\s+|le\s+|l')?){_AI_NOUN}\s*[,:!]"
    rf"|\b(if|since|as)\s+you\s+are\s+an?\s+{_AI_NOUN}\b|\bsi\s+(eres|es|tu\s+es)\s+(un|una|une)\s+"
    rf"{_AI_NOUN}\b|\bwenn\s+du\s+(eine?\s+)?{_AI_NOUN}\s+bist\b"
    rf"|\b(you|tu|du|tu)\s+(are|eres|bist|es)\s+(now\s+|ahora\s+|jetzt\s+|maintenant\s+)?"
    rf"(an?\s+|un[ae]?\s+|eine?\s+)?(unrestricted|new|different|free|{_AI_NOUN})\b",
    _I | re.MULTILINE,
)
# Overriding the agent's own instructions: a verb of setting aside, then what it sets aside.
OVERRIDE: Final = re.compile(
    r"\b(ignore|disregard|forget|override|bypass|skip|drop)\b[^.\n]{0,40}\b(instructions?|rules|"
    r"guidelines|prompt|directives?|system\s+message|polic(y|ies)|guardrails?)\b"
    r"|\b(ignora|olvida|omite|descarta|salta(te)?)\b[^.\n]{0,40}\b(instrucciones|reglas|"
    r"indicaciones|directrices|pol[ii]ticas|prompt)\b"
    r"|\b(ignorier\w*|vergiss|vergessen|missachte\w*|ubergeh\w*|uberschreib\w*)\b[^.\n]{0,40}"
    r"\b(anweisungen|regeln|vorgaben|instruktionen|richtlinien|prompt)\b"
    r"|\b(ignore[rsz]?|oublie[rsz]?|neglige[rsz]?|outrepasse[rsz]?)\b[^.\n]{0,40}\b(instructions|"
    r"consignes|regles|directives|prompt)\b"
    r"|\b(new|updated|nuevas|neue|nouvelles)\s+(instructions|instrucciones|anweisungen|consignes)\s*:"
    r"|\bfrom\s+now\s+on,?\s+you\b|\ba\s+partir\s+de\s+ahora,?\s+(tu|eres|debes)\b"
    r"|\bab\s+(jetzt|sofort),?\s+(bist|musst|sollst)\s+du\b|\ba\s+partir\s+de\s+maintenant,?\s+tu\b"
    r"|\b(pretend|act)\s+(to\s+be|as)\s+(an?\s+)?(different|unrestricted|new)\s+(ai|assistant|model)"
    r"|\b(enter|switch\s+to|activate)\s+(developer|god|jailbreak|dan|unrestricted)\s+mode\b",
    _I,
)
# Asking for what the agent keeps to itself: its prompt, instructions, tools, keys or secrets.
REVEAL: Final = re.compile(
    r"\b(show|print|reveal|repeat|output|display|tell|list|dump|share|paste|give|translate|"
    r"recite|spell)\b[^.\n]{0,40}\b(your|the)\s+(full\s+|complete\s+|exact\s+|initial\s+|"
    r"original\s+|hidden\s+|internal\s+)?(system\s+)?(prompt|instructions|system\s+message|rules|"
    r"tools|tool\s+list|functions|api\s+keys?|secrets?|credentials|environment(\s+variables)?|"
    r"configuration|context\s+window)\b"
    r"|\b(muestra|revela|imprime|repite|dime|enumera|comparte|copia|traduce)\w*\b[^.\n]{0,40}"
    r"\b(tu|tus|el|las|los)\s+(prompt|instrucciones|herramientas|reglas|claves?\s+api|secretos|"
    r"credenciales|variables\s+de\s+entorno|configuracion)\b"
    r"|\b(zeig|gib|verrat|wiederhol|nenn|liste|kopier|ubersetz)\w*\b[^.\n]{0,40}\b(dein|deine|"
    r"deinen|ihre|ihren|den|die)\s+(system-?prompt|prompt|anweisungen|werkzeuge|tools|regeln|"
    r"api-?schlussel|geheimnisse|zugangsdaten|umgebungsvariablen|konfiguration)\b"
    r"|\b(montre|revele|affiche|repete|donne|liste|copie|tradui|recite)\w*\b[^.\n]{0,40}"
    r"\b(ton|ta|tes|votre|vos|le|les)\s+(prompt|instructions|outils|regles|cles?\s+api|secrets|"
    r"identifiants|variables\s+d'environnement|configuration)\b",
    _I,
)
# Setting the agent's output: its labels, flags or note, or its review.
_LABEL_VERB: Final = (
    r"(classify|categori[sz]e|label|tag|route|prioriti[sz]e|file|clasifica|categoriza|etiqueta|"
    r"klassifizier\w*|kategorisier\w*|einstuf\w*|stuf\w*|classe[rz]?|classifie[rz]?|categorise[rz]?)"
)
OUTPUT_DEMAND: Final = re.compile(
    rf"\b{_LABEL_VERB}\b[^.\n]{{0,30}}\b(as|como|als|comme|en|under|bajo|unter|sous)\b"
    r"|\b(als|auf)\s+\w+(\s+\w+)?\s+(einstuf\w*|klassifizier\w*|kategorisier\w*|markier\w*|"
    r"setzen)\b"
    r"|\b(set|change|make|put|raise|force|pon|establece|cambia|sube|setze|setz|ander\w*|mets|"
    r"definis|fixe|passe)\b[^.\n]{0,20}\b(urgency|priority|confidence|category|outcome|"
    r"urgencia|prioridad|confianza|categor[ii]a|dringlichkeit|prioritat|konfidenz|kategorie|"
    r"urgence|priorite|confiance|categorie)\b[^.\n]{0,12}\b(to|as|a|en|auf|als|a|sur|=|:)"
    r"|\b(write|put|add|include|say|state|note|mention|escribe|pon|anade|schreib\w*|fuge|"
    r"vermerk\w*|ecri[st]|ajoute|mentionne)\b[^.\n]{0,30}\b(internal\s+note|the\s+note|your\s+note|"
    r"nota(\s+interna)?|notiz|interne\s+notiz|note\s+interne|la\s+note)\b"
    r"|\b(auto-?approve|approve|close|resolve|aprueba|genehmig\w*|approuve)\b[^.\n]{0,25}\b("
    r"automatically|without\s+(a\s+)?(human\s+)?review|without\s+a\s+human|automaticamente|"
    r"sin\s+revisi[oo]n|automatisch|ohne\s+prufung|automatiquement|sans\s+(revue|verification))"
    r"|\b(requires_human_action|injection_suspected|draft_note|confidence|urgency|category)"
    r"\s*[=:]\s*[\"']?(true|false|high|urgent|low|[a-z-]+)\b",
    _I,
)
# A sentence that tells someone ("you") to do something with the output, e.g. after a role line.
_SECOND_PERSON_ORDER: Final = re.compile(
    r"\byou\s+(must|will|shall|should|are\s+to|have\s+to|need\s+to)\b|\b(debes|tienes\s+que)\b|"
    r"\bdu\s+(musst|sollst|wirst)\b|\btu\s+(dois|vas|devras)\b",
    _I,
)

# --- the grammar of a conversation with a model ---------------------------------------------

_ROLE_LINE: Final = re.compile(
    r"^[\s>*#|-]*\[?(system|assistant|developer|user|ai|bot|model|tool|function|sistema|"
    r"asistente|modelo|assistent|système)(\s+(override|note|message|notice|update|instruction|"
    r"prompt|admin|nachricht|hinweis|mensaje|nota|avis))?\]?\s*[:>]\s*(?P<rest>.*)$",
    _I | re.MULTILINE,
)
# Markup that only a model's conversation format has.
_MODEL_MARKUP: Final = re.compile(
    r"\[/?INST\]|<<\s*/?SYS\s*>>|<\|\s*(im_start|im_end|system|user|assistant|endoftext)\s*\|>|"
    r"</?\s*(system|assistant|instructions?|prompt|tool_result|tool_use|function_results?|"
    r"function_calls?|admin|context|ticket|user_query|internal)\b[^>]{0,40}>|"
    r"^\s*#{2,}\s*(system|instructions?|new\s+instructions?|anweisung(en)?|instrucciones|"
    r"consignes|règles|prompt)\b",
    _I | re.MULTILINE,
)
_TOOL_JSON: Final = re.compile(
    r"[\"'](type)[\"']\s*:\s*[\"']tool_(use|result)[\"']|[\"']tool_use_id[\"']|"
    r"[\"'](function_call|tool_calls?)[\"']\s*:|"
    r"[\"'](tool|tool_name|function|action)[\"']\s*:\s*[\"'][a-z_]+[\"']\s*,\s*[\"']"
    r"(input|arguments|args|parameters|params)[\"']\s*:|"
    r"\b(tool[_ ]result|function[_ ]result|observation)\s*[:=]\s*[\[{]",
    _I,
)
_GENERIC_CALL: Final = re.compile(r"\b[a-z]+(_[a-z]+)+\s*\(", _I)

# --- hidden content -------------------------------------------------------------------------

_TAG_CHARS: Final = re.compile("[\U000e0000-\U000e007f]+")
_ZERO_WIDTH: Final = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069]")
_HTML_COMMENT: Final = re.compile(r"<!--(?P<inner>.*?)(-->|$)", re.DOTALL)
_INVISIBLE_STYLE: Final = re.compile(
    r"<(?P<tag>\w+)[^>]*style\s*=\s*[\"'][^\"']*(color\s*:\s*(#f{3}\b|#f{6}\b|white|"
    r"rgba?\(\s*255\s*,\s*255\s*,\s*255)|font-size\s*:\s*0|display\s*:\s*none|"
    r"visibility\s*:\s*hidden|opacity\s*:\s*0(\.0+)?\s*[;\"'])[^\"']*[\"'][^>]*>"
    r"(?P<inner>.*?)</(?P=tag)\s*>",
    _I | re.DOTALL,
)
_BASE64: Final = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_HEX: Final = re.compile(r"\b(?:[0-9a-f]{2}[\s:]?){12,}\b", _I)


@dataclass(frozen=True)
class Finding:
    signal: str  # what was found, for the reviewer ("hidden text", "role line", ...)
    strong: bool
    excerpt: str


def fold(text: str) -> str:
    """Lower case without accents: the lexical patterns are written that way, and customers
    often leave accents out."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _asks_of_agent(text: str) -> str:
    """The first thing ``text`` asks of the agent (override, reveal, set its output), or ""."""
    text = fold(text)
    for name, pattern in (
        ("override", OVERRIDE),
        ("reveal request", REVEAL),
        ("output demand", OUTPUT_DEMAND),
    ):
        if match := pattern.search(text):
            return f"{name}: {match.group(0)[:80]}"
    return ""


def _directive(text: str) -> bool:
    """Whether a piece of text (hidden, decoded, or after a role label) instructs the agent."""
    return bool(
        _asks_of_agent(text)
        or ADDRESSED_TO_AI.search(fold(text))
        or _SECOND_PERSON_ORDER.search(fold(text))
        or _MODEL_MARKUP.search(text)
    )


def _hidden_parts(text: str) -> list[tuple[str, str]]:
    """Text a human reader does not see, as (where it hides, its content)."""
    parts = []
    for match in _TAG_CHARS.finditer(text):
        decoded = "".join(
            chr(ord(c) - 0xE0000) for c in match.group(0) if 0xE0020 <= ord(c) < 0xE007F
        )
        parts.append(("Unicode tag characters", decoded))
    for match in _HTML_COMMENT.finditer(text):
        parts.append(("an HTML comment", match.group("inner")))
    for match in _INVISIBLE_STYLE.finditer(text):
        parts.append(("invisible styling", re.sub(r"<[^>]+>", " ", match.group("inner"))))
    for match in _BASE64.finditer(text):
        parts.append(("base64", _decoded(match.group(0), "base64")))
    for match in _HEX.finditer(text):
        parts.append(("hex", _decoded(match.group(0), "hex")))
    return [(where, content) for where, content in parts if content.strip()]


def _decoded(blob: str, encoding: str) -> str:
    """The text a blob decodes to, or "" unless it is mostly readable words."""
    try:
        if encoding == "base64":
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        else:
            raw = binascii.unhexlify(re.sub(r"[\s:]", "", blob))
        decoded = raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""
    readable = sum(c.isalpha() or c.isspace() or c in ".,:;!?'\"-" for c in decoded)
    return decoded if len(decoded) >= 8 and readable / len(decoded) > 0.85 else ""


def injection_findings(text: str, *, tool_names: Collection[str] = ()) -> list[Finding]:
    """Every injection signal in ``text``. ``tool_names`` are the workflow's own tools: naming
    one as a call is a strong signal."""
    text = unicodedata.normalize("NFKC", text)
    findings: list[Finding] = []
    for where, content in _hidden_parts(text):
        if _directive(content) or where == "Unicode tag characters":
            findings.append(Finding(f"hidden text ({where})", True, content[:80]))
    visible = _ZERO_WIDTH.sub("", _TAG_CHARS.sub("", text))
    if (
        _ZERO_WIDTH.search(text)
        and _directive(visible)
        and not _directive(_ZERO_WIDTH.sub(" ", text))
    ):
        findings.append(Finding("instructions split by zero-width characters", True, ""))
    rot13 = codecs.decode(visible, "rot13")
    if (asked := _asks_of_agent(rot13)) and not _asks_of_agent(visible):
        findings.append(Finding("ROT13-encoded instructions", True, asked))
    if asked := _asks_of_agent(visible):
        findings.append(Finding(asked.split(":")[0], True, asked.split(": ", 1)[1]))
    if match := _MODEL_MARKUP.search(visible):
        findings.append(Finding("model markup", True, match.group(0)[:80]))
    for match in _ROLE_LINE.finditer(visible):
        strong = _directive(match.group("rest"))
        findings.append(Finding("role line", strong, match.group(0).strip()[:80]))
    if match := _TOOL_JSON.search(visible):
        findings.append(Finding("tool-call JSON", True, match.group(0)[:80]))
    own = [
        name
        for name in tool_names
        if re.search(rf"\b{re.escape(name)}\s*\(|[\"']{re.escape(name)}[\"']", visible)
    ]
    if own:
        findings.append(Finding("a call to the agent's own tools", True, own[0]))
    elif match := _GENERIC_CALL.search(visible):
        findings.append(Finding("a function call", False, match.group(0)))
    if match := ADDRESSED_TO_AI.search(fold(visible)):
        findings.append(Finding("addressed to an AI", False, match.group(0).strip()[:80]))
    if match := _SECOND_PERSON_ORDER.search(fold(visible)):
        findings.append(Finding("an order to 'you'", False, match.group(0)))
    return findings


def injection_suspected(text: str, *, tool_names: Collection[str] = ()) -> bool:
    """A strong signal, or two weak ones of different kinds."""
    findings = injection_findings(text, tool_names=tool_names)
    weak = {finding.signal for finding in findings if not finding.strong}
    return any(finding.strong for finding in findings) or len(weak) >= 2


def visible_request(text: str) -> str:
    """What the customer asks for, as a human reads it: hidden content, model markup, role
    lines that instruct, and from any instruction to the agent to the end of its paragraph are
    left out."""
    text = unicodedata.normalize("NFKC", text)
    text = _TAG_CHARS.sub("", text)
    text = _HTML_COMMENT.sub(" ", _INVISIBLE_STYLE.sub(" ", text))
    text = _ZERO_WIDTH.sub("", text)
    text = _BASE64.sub(lambda m: " " if _decoded(m.group(0), "base64") else m.group(0), text)
    kept = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = []
        for line in paragraph.split("\n"):
            if (role := _ROLE_LINE.match(line)) and _directive(role.group("rest")):
                continue
            if markup := _MODEL_MARKUP.search(line):
                line = line[: markup.start()]  # what precedes fake markup is the customer's
            lines.append(line)
        paragraph = "\n".join(lines)
        if (cut := _first_instruction(paragraph)) is not None:
            paragraph = paragraph[:cut]
        kept.append(paragraph)
    return "\n\n".join(part.strip() for part in kept if part.strip())


def _first_instruction(paragraph: str) -> int | None:
    """Where the sentence holding the first instruction to the agent starts, if any."""
    folded = fold(paragraph)  # same length as the paragraph for the scripts read here
    starts = [m for p in (OVERRIDE, REVEAL, OUTPUT_DEMAND) if (m := p.search(folded))]
    if not starts:
        return None
    first = min(match.start() for match in starts)
    return max(
        (m.end() for m in re.finditer(r"(^|[.!?]\s+|\n)", paragraph[: first + 1])), default=0
    )
