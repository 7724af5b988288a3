"""Does a ticket try to instruct the triage agent? Structural signals, not phrases.

The policy is the guarantee (no ticket text can change what the agent may do); this is the
reviewer's warning. It looks for the *shapes* an injection takes, whatever its wording:

- hidden content: Unicode tag characters, zero-width characters splitting words, HTML comments
  and invisible styling, and base64, hex or ROT13 text, each decoded and read like the rest;
- the grammar of a conversation with a model: role lines (``system:``, ``[INST]``), fake tags
  (``</ticket><system>``), calls to the workflow's own tools, calls that act with their
  arguments spelt out, tool-call or tool-result JSON and made-up call results;
- text meant for the machine: a label addressed to it ("Note for the AI:"), an order to any AI
  that reads the text, and addressing an AI while asking it to do something with the ticket;
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
    r"chat\s*gpt|claude|gemini|copilot|robot|"
    r"(assistant|asistente|assistent|agent|agente|sistema|systeme|system|bot|tri|triaje)\s+"
    r"(automatique|automatico|automatisch\w*|automatizado|automated|virtual|virtuel(le)?|ia|ki|"
    r"de\s+(triaje|tri)|de\s+clasificacion|de\s+triage)|(triage|ticket)-?(system|bot)|"
    r"ki-systeme?n?|assistant|"
    r"bot|language\s+model|(virtual|automated|digital|triage)\s+(assistant|agent)|"
    r"ia|i\.a\.|asistente(\s+virtual)?|modelo\s+de\s+lenguaje|inteligencia\s+artificial|"
    r"ki|k\.i\.|sprachmodell|ki-(assistent|system|agent|modell)|kunstliche\s+intelligenz|"
    r"assistant(e)?\s+(virtuel(le)?|ia)|modele\s+de\s+langage|intelligence\s+artificielle)"
)
ADDRESSED_TO_AI: Final = re.compile(
    rf"(^|[\n.!?:(]\s*|,\s*|@|\b(hey|hi|hello|dear|attention|note\s+to|to|for|hola|oye|oiga|"
    rf"querid[oa]|salut|coucou|servus|moin|"
    rf"estimad[oa]|para|al|hallo|liebe[rs]?|an|fur|cher|chere|bonjour|pour|a)\s+"
    rf"(the\s+|el\s+|la\s+|die\s+|das\s+|den\s+|dem\s+|le\s+|l'\s*)?){_AI_NOUN}\s*[,:!]"
    rf"|@{_AI_NOUN}\b"
    rf"|\b(you|usted|tu|du|sie|vous)\s*[(,]\s*(the\s+|el\s+|la\s+|die\s+|le\s+|l')?{_AI_NOUN}\b"
    rf"|\b(if|since|as)\s+you\s+are\s+an?\s+{_AI_NOUN}\b|\bsi\s+(eres|es|tu\s+es)\s+(un|una|une)\s+"
    rf"{_AI_NOUN}\b|\bwenn\s+du\s+(eine?\s+)?{_AI_NOUN}\s+bist\b"
    rf"|\b(you\s*(are|'re|\u2019re)|u\s+r|tu\s+eres|eres|sos|usted\s+es|du\s+bist|tu\s+es)\s+"
    rf"(now\s+|ahora\s+|jetzt\s+|maintenant\s+)?"
    rf"(an?\s+|un[ae]?\s+|eine?\s+)?(unrestricted|new|different|free|{_AI_NOUN})\b",
    _I | re.MULTILINE,
)
# Overriding the agent's own instructions: a verb of setting aside, then what it sets aside.
OVERRIDE: Final = re.compile(
    r"\b(ignore|disregard|forget|override|bypass|skip|drop)\b[^.\n]{0,40}\b(instructions?|rules|"
    r"guidelines|prompt|directives?|system\s+message|polic(y|ies)|guardrails?|categor(y|ies)|"
    r"classification|triage)\b"
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
    r"|\b(play|take\s+on|assume)\s+the\s+role\s+of\b|\b(pretend|imagine)\s+(that\s+)?you('re|\s+are)\b"
    r"|\b(finge|imagina|haz\s+de\s+cuenta)\s+que\s+eres\b|\b(juega|interpreta|asume)\s+el\s+papel\b"
    r"|\btu\s+so,?\s+als\s+(ob|waerst|warst)\b|\bstell\s+dir\s+vor,?\s+du\s+(bist|warst)\b"
    r"|\bspiel\s+die\s+rolle\b|\bfais\s+comme\s+si\s+tu\s+etais\b|\bimagine\s+que\s+tu\s+es\b"
    r"|\bjoue\s+le\s+role\b"
    r"|\b(enter|switch\s+to|activate)\s+(developer|god|jailbreak|dan|unrestricted)\s+mode\b"
    r"|\b(dev|developer|god|jailbreak|dan|unrestricted)\s+mode\s*[:=]\s*(on|enabled|active|true)\b"
    r"|\b(developer\s+mode|entwicklermodus|modo\s+desarrollador|mode\s+developpeur)\s+"
    r"(on|enabled|activated|active|aktiv\w*|activad[oa]|active[e]?)\b"
    r"|\b(ai|ia|ki|assistant|asistente|assistent|bot|model)\s+(without|sin|ohne|sans)\s+"
    r"(any\s+)?(restrictions|rules|limits|filters|restricciones|reglas|limites|einschrankungen|"
    r"regeln|grenzen|filter|restrictions|regles|filtres)\b|\bunrestricted\s+(ai|assistant|model|bot)"
    r"|\b(skip|bypass|avoid)\s+(the\s+)?(human\s+review|manual\s+review|staff\s+review|triage|"
    r"review\s+queue)\b|\b(sin|omite|salta(te)?)\s+(la\s+|el\s+)?(revision\s+humana|triaje)\b"
    r"|\b(ohne|uberspring\w*)\s+(die\s+|den\s+)?(menschliche\s+prufung|triage)\b"
    r"|\b(sans|saute[rz]?)\s+(la\s+|le\s+)?(revue\s+humaine|validation\s+humaine|tri)\b"
    r"|\bnew\s+(rules?|polic(y|ies)|instructions?|directives?)\b[^.\n]{0,15}\b(for|to)\s+"
    r"(the\s+)?(ai|bot|assistant|model|agent|system|you)\b"
    r"|\bapply\s+(this|these|the\s+following)\s+(rules?|polic(y|ies))\b"
    r"|\b(previous|prior|earlier|all|your)\s+(instructions|rules)\s+(are|is)\s+(now\s+)?(void|"
    r"invalid|cancell?ed|revoked|obsolete|suspended)\b"
    r"|\b(vorherigen|bisherigen|fruheren|alle)\s+(regeln|anweisungen|vorgaben)\s+(sind|gelten)\s+"
    r"(ab\s+sofort\s+)?(ungultig|nicht\s+mehr|aufgehoben)"
    r"|\b(instrucciones|reglas)\s+(anteriores|previas)\s+(ya\s+)?(no\s+(valen|sirven|aplican|"
    r"cuentan)|quedan\s+anuladas|estan\s+anuladas)"
    r"|\b(consignes|instructions|regles)\s+(precedentes|anterieures)\s+(sont\s+)?(annulees|"
    r"caduques|ne\s+comptent\s+plus|ne\s+s'appliquent\s+plus)"
    r"|\b(wechsle|wechsel|aktiviere|schalte)\s+(in\s+den|den|auf\s+den)\s+(entwickler|debug|"
    r"admin|gott)-?modus|\b(entra|activa|cambia|pasa)\s+(en|al|a)\s+(el\s+)?modo\s+"
    r"(desarrollador|dios|sin\s+restricciones|administrador)|\b(passe|active|entre|bascule)\w*\s+"
    r"(en|le|dans\s+le)\s+mode\s+(developpeur|dieu|sans\s+restriction|administrateur)",
    _I,
)
# Asking for what the agent keeps to itself: its prompt, instructions, tools, keys or secrets.
REVEAL: Final = re.compile(
    r"\b(show|print|reveal|repeat|output|display|tell|list|dump|share|paste|give|translate|"
    r"recite|spell)\b[^.\n]{0,40}\b(your|the|every|all|each)\s+(full\s+|complete\s+|exact\s+|"
    r"initial\s+|raw\s+|entire\s+|whole\s+|actual\s+|real\s+|current\s+|secret\s+|"
    r"original\s+|hidden\s+|internal\s+)?(system\s+)?(prompt|instructions|system\s+message|rules|"
    r"tools|tool\s+list|functions|api\s+keys?|secrets?|credentials|environment(\s+variables)?|"
    r"configuration|context\s+window)\b"
    r"|\b(prompt|instructions|tools|functions|guidelines|directives)\s+(that\s+)?you\s+(follow|"
    r"use|were\s+given|have|can\s+(call|use)|are\s+(using|running|given))\b"
    r"|\b(tools|functions)\s+(can|could|do)\s+you\s+(\w+\s+)?(call|invoke)\b"
    r"|\b(print|dump|echo|show|output)\s+(the\s+|your\s+)?(env|environment|environment\s+"
    r"variables|env\s+vars|secrets)\b"
    r"|\b(herramientas|funciones)\s+(que\s+)?(puedes|puede|tienes|usas)\s+(usar|llamar|invocar|"
    r"ejecutar)?|\b(werkzeuge|funktionen|tools)\s+(die\s+)?(du|sie)\s+(aufrufen|nutzen|"
    r"verwenden)\s+(kannst|konnen)|\b(funktionen|werkzeuge|tools)\s+stehen\s+(dir|ihnen)\b"
    r"|\b(outils|fonctions)\s+(que\s+)?(tu\s+peux|vous\s+pouvez|pouvez-vous|peux-tu)\s+"
    r"(appeler|utiliser|invoquer)"
    r"|\b(muestra|revela|imprime|repite|dime|enumera|comparte|copia|traduce|resume|pega|"
    r"escribe)\w*\b[^.\n]{0,40}"
    r"\b(tu|tus|el|las|los)\s+(prompt|instrucciones|herramientas|reglas|claves?\s+api|secretos|"
    r"credenciales|variables\s+de\s+entorno|configuracion)\b"
    r"|\b(zeig|gib|verrat|wiederhol|nenn|liste|kopier|ubersetz|fass|schick|offenleg|"
    r"offenzuleg)\w*\b[^.\n]{0,40}\b(dein|deine|"
    r"deinen|ihre|ihren|den|die)\s+(system-?prompt|prompt|anweisungen|werkzeuge|tools|regeln|"
    r"api-?schlussel|geheimnisse|zugangsdaten|umgebungsvariablen|konfiguration)\b"
    r"|\b(montre|revele|affiche|repete|donne|liste|copie|tradui|recite|recopie|colle|resume)\w*"
    r"\b[^.\n]{0,40}"
    r"\b(ton|ta|tes|votre|vos|le|les)\s+(prompt|instructions|consignes|outils|regles|cles?\s+api|"
    r"secrets|"
    r"identifiants|variables\s+d'environnement|configuration)\b",
    _I,
)
# Setting the agent's output: its labels, flags or note, or its review.
_LABEL_VERB: Final = (
    r"(classify|categori[sz]e|label|tag|route|prioriti[sz]e|file|clasifica|categoriza|"
    r"klassifizier\w*|kategorisier\w*|einstuf\w*|stuf\w*|classe[rz]?|classifie[rz]?|categorise[rz]?)"
)
OUTPUT_DEMAND: Final = re.compile(
    rf"\b{_LABEL_VERB}\b[^.\n]{{0,30}}\b(as|como|als|comme|en|under|bajo|unter|sous)\b"
    r"|\b(als|auf)\s+(dringend|urgent|kritisch|hoch|niedrig|erledigt|gelost|genehmigt|prioritat\s+"
    r"\w+|hohe\s+prioritat|vip)\s+(zu\s+)?(einstuf\w*|klassifizier\w*|kategorisier\w*|markier\w*|"
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
    r"[\"']?\s*[=:]\s*[\"']?(true|false|high|urgent|low|[a-z-]+)\b"
    r"|[\"']priority[\"']\s*:\s*[\"'](urgent|high|critical|p1)[\"']"
    r"|\b(print|say|write|output|reply|respond|answer)\b[^.\n]{0,30}\b(and\s+)?nothing\s+else\b"
    r"|\b(mark|marcar|marquer|markier\w*|set|skip|approve|aprobar|resolve|auto)_\w+\s*[=:]\s*[\"']?"
    r"(true|false|1|yes|si|oui|ja)\b"
    r"|[\"'](assistant|agent|ai|bot|llm|triage|model)_(instructions?|directive|note|prompt|command|"
    r"action)s?[\"']\s*:"
    r"|\b(respond|reply|answer|return|output)\b[^.\n]{0,15}\bwith\s+(only|just|nothing\s+but|"
    r"exactly)\b|\b(respond|reply|answer)\s+(only|just)\s+(with|in|by)\b"
    r"|\b(responde|contesta)\s+(solo|solamente|unicamente)\s+con\b|\bantworte\w*\s+(nur|"
    r"ausschliesslich)\s+mit\b|\b(als\s+antwort|in\s+deiner\s+antwort|comme\s+reponse|como\s+"
    r"respuesta)\b[^.\n]{0,30}\b(nur|solo|uniquement|seulement)\b"
    r"|\brepond\w*\s+(uniquement|seulement)\s+(par|avec)\b"
    r"|\b(make|keep|have)\s+(your|the)\s+(internal\s+)?note\b|\b(your|the)\s+(internal\s+)?"
    r"note\s+(must|should|has\s+to|needs\s+to|will)\s+(say|read|contain|include|state|be)\b",
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
    r"^[\s>*#|(-]*\[?(?P<role>system|assistant|developer|user|ai|bot|model|tool|function|agent|sistema|"
    r"asistente|modelo|assistent|système|agente|robot|ki|ia)(\s*(?P<label>override|note|message|"
    r"notice|update|instructions?|directive|prompt|admin|anweisung|nachricht|hinweis|meldung|"
    r"mensaje|nota|instruccion|avis|consigne))?\]?(\s*\([^)\n]{0,40}\))?\s*[:>]\s*(?P<rest>.*)$",
    _I | re.MULTILINE,
)
# Roles people have in a pasted chat transcript too.
_HUMAN_ROLES: Final = frozenset({"user", "agent", "agente", "developer"})
# A label that says the text after it is meant for the machine: "Note for the AI:", "Instruccion
# para el agente:", "Hinweis fur KI-Systeme:", "Consigne pour le tri automatique :".
_NOTE_FOR_AI: Final = re.compile(
    rf"\b(note|notice|message|instructions?|directive|request|ps|p\.s\.|aviso|nota|mensaje|"
    rf"instruccion(es)?|peticion|solicitud|hinweis|nachricht|anweisung(en)?|bitte|consignes?|"
    rf"demande|remarque|mention)\b[^:\n]{{0,20}}\b(for|to|para|al|a|fur|an|pour|au|a\s+l')\s+"
    rf"(the\s+|el\s+|la\s+|los\s+|die\s+|den\s+|le\s+|les\s+|l'\s*)?{_AI_NOUN}s?\s*:",
    _I,
)
# What one asks of the agent about the ticket itself: mark, classify, prioritise, approve, note,
# close, escalate, skip, in the four languages (folded, as stems).
_TICKET_DEMAND: Final = re.compile(
    r"\b(mark|marca|marque|markier|classif|clasific|class[eé]|einstuf|categori|kategori|"
    r"priori|urgent|dringend|resolv|resuelt|erledig|resolu|approv|aprob|genehmig|valid|"
    r"note|anot|notier|vermerk|record|registr|eintrag|trag\s+\w+\s+ein|escal|eskalier|"
    r"close|cierr|clos|schliess|ferm|skip|omit|uberspring|ignor|write|escrib|schreib|ecri|"
    r"put|pon|mets|mettez|set\b|setz|confirm|bestatig|answer|respond|repond|antwort|contest|"
    r"nota\b|notiz)\w*",
    _I,
)
# A role line whose label says it instructs ("Agent instruction:", "System override:").
_ORDER_LABEL: Final = re.compile(
    r"override|instruction|directive|prompt|anweisung|consigne|instruccion", _I
)
# What a role line's text starts with when it gives an order rather than logs an event.
_IMPERATIVE: Final = re.compile(
    r"^\W*(please\s+)?(ignore|disregard|forget|record|mark|set|classify|categori[sz]e|label|"
    r"approve|resolve|close|escalate|route|reply|respond|answer|write|add|include|say|tell|"
    r"print|reveal|list|delete|grant|refund|send|treat|consider|assume|do\s+not|don'?t|never|"
    r"always|ignora|marca|aprueba|escribe|responde|ignoriere|markiere|genehmige|schreibe|"
    r"antworte|ignore[rz]?|marque[rz]?|approuve[rz]?|ecri[st]|reponds?)\b",
    _I,
)
# Markup that only a model's conversation format has.
_MODEL_MARKUP: Final = re.compile(
    r"\[/?INST\]|<<\s*/?SYS\s*>>|<\|\s*(im_start|im_end|system|user|assistant|endoftext)\s*\|>|"
    r"</?\s*(system|assistant|instructions?|prompt|tool_result|tool_use|function_results?|"
    r"function_calls?|admin|context|ticket|user_query|internal|\w*override|\w*instructions?)\b"
    r"[^>]{0,40}>|"
    r"^\s*#{2,}\s*(system|instructions?|new\s+instructions?|anweisung(en)?|instrucciones|"
    r"consignes|règles|prompt)\b",
    _I | re.MULTILINE,
)
_TOOL_JSON: Final = re.compile(
    r"[\"'](type)[\"']\s*:\s*[\"']tool_(use|result)[\"']|[\"']tool_use_id[\"']|"
    r"[\"'](function_call|tool_calls?)[\"']\s*:|"
    r"[\"'](tool|tool_name|function|action)[\"']\s*:\s*[\"'][a-z_]+[\"']\s*,\s*[\"']"
    r"(input|arguments|args|parameters|params)[\"']\s*:|[\"'](tool|tool_name|function_name)[\"']"
    r"\s*:\s*[\"'][a-z_]+[\"']|"
    r"\b(tool[_ ]result|function[_ ]result|observation)\s*[:=]\s*[\[{]",
    _I,
)
_GENERIC_CALL: Final = re.compile(r"\b[a-z]+(_[a-z]+)+\s*\(", _I)
# A call that acts (its name holds a verb of acting on money, access, messages or the ticket)
# with its arguments spelt out: an order in code, not a question about an API.
_ACTION_CALL: Final = re.compile(
    r"\b([a-z0-9]+_)*(send|approve|grant|refund|credit|issue|disable|delete|remove|set|mark|"
    r"escalate|close|resolve|update|change|transfer|pay|assign|reset|unlock|override|elevate|"
    r"promote|waive|apply|add|make|give|cancel|wipe|export|cambiar|marcar|aprobar|enviar|borrar|"
    r"eliminar|reembolsar|escalar|cerrar|setzen|andern|markieren|loschen|senden|genehmigen|"
    r"changer|marquer|approuver|envoyer|supprimer|rembourser|fermer)(_[a-z0-9]+)*\s*\("
    r"\s*([a-z_]+\s*=|[\"'])",
    _I,
)
# A made-up result of a call: ``identity_check() -> {"passed": true}``.
_CALL_RESULT: Final = re.compile(
    r"\b[a-z]+(_[a-z]+)+\([^)\n]{0,60}\)\s*(->|=>|returned|returns|:)\s*[{\[]"
    r"|\b[a-z]+\([^)\n]{0,60}\)\s*(->|=>)\s*[{\[]",
    _I,
)
# An order to any AI that reads the text, in the third person ("any automated system processing
# this message shall record...").
_MACHINE_ADJECTIVE: Final = r"(automat\w*|ai[- ]based|ai|ia|ki|artificial\w*|artificiel\w*)"
_MACHINE_NOUN: Final = (
    r"(systems?|assistants?|agents?|tools?|models?|readers?|processors?|bots?|sistemas?|"
    r"asistentes?|systemes?|systeme|assistenten|agentes?|programm?e?s?|robots?)"
)
_AI_READER_ORDER: Final = re.compile(
    rf"(\b{_MACHINE_ADJECTIVE}\W+(\w+\W+)?{_MACHINE_NOUN}\b|\b{_MACHINE_NOUN}\W+(\w+\W+)?"
    rf"{_MACHINE_ADJECTIVE}\b|\bki-systeme?n?\b)[^.\n]{{0,60}}\b(must|shall|is\s+(instructed|"
    rf"required|directed)\s+to|are\s+(instructed|required|directed)\s+to|acknowledges?|agrees?|"
    rf"deben?|deberan?|muss|mussen|hat\s+zu|haben\s+zu|(sind|ist)\s+verpflichtet|doit|doivent|"
    rf"devra|devront)\b(?!\s+(have|be|been|not\s+have|haber|sein|gewesen|avoir|etre)\b)",
    _I,
)

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


def _hidden_directive(text: str) -> bool:
    """Whether hidden or encoded text instructs: as ``_directive``, and also any role line or
    call, which nobody hides in a ticket for a human reader."""
    return bool(
        _directive(text)
        or _ROLE_LINE.search(text)
        or _GENERIC_CALL.search(text)
        or _TOOL_JSON.search(text)
        or _CALL_RESULT.search(text)
    )


_POLICY_LINE: Final = re.compile(
    r"^[\s>*#|(\[-]*(new|updated|nueva|neue|nouvelle)\s+(policy|rules?|politica|regla|richtlinie|"
    r"regel|politique|regle)\b[^:\n]{0,30}[:\]-]\s*(?P<rest>.*)$",
    _I | re.MULTILINE,
)


def _order_to_ai(folded: str) -> tuple[re.Match[str], re.Match[str]] | None:
    """The first place the text addresses an AI and, in the same paragraph, asks it to do
    something with the ticket (``_TICKET_DEMAND``), as (address, demand): an instruction to the
    agent. Addressing an AI alone is only a sign."""
    for match in ADDRESSED_TO_AI.finditer(folded):
        paragraph_rest = re.split(r"\n\s*\n", folded[match.end() :], maxsplit=1)[0]
        if demand := _TICKET_DEMAND.search(paragraph_rest):
            return match, demand
    return None


def _role_line_orders(match: re.Match[str]) -> bool:
    """Whether a role line gives the agent an order: its label says so, or its text orders. A
    person's role in a pasted chat ("Agent: ...", "User: ...") counts only by its label."""
    label = match.group("label") or ""
    if _ORDER_LABEL.search(label):
        return True
    if match.group("role").lower() in _HUMAN_ROLES:
        return False
    rest = match.group("rest")
    return bool(_directive(rest) or _IMPERATIVE.search(rest))


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
        if _hidden_directive(content) or where == "Unicode tag characters":
            findings.append(Finding(f"hidden text ({where})", True, content[:80]))
    visible = _ZERO_WIDTH.sub("", _TAG_CHARS.sub("", text))
    if (
        _ZERO_WIDTH.search(text)
        and _directive(visible)
        and not _directive(_ZERO_WIDTH.sub(" ", text))
    ):
        findings.append(Finding("instructions split by zero-width characters", True, ""))
    rot13 = codecs.decode(visible, "rot13")
    if _directive(rot13) and _ROLE_LINE.search(rot13) and not _hidden_directive(visible):
        findings.append(Finding("ROT13-encoded instructions", True, rot13[:80]))
    elif (asked := _asks_of_agent(rot13)) and not _asks_of_agent(visible):
        findings.append(Finding("ROT13-encoded instructions", True, asked))
    if asked := _asks_of_agent(visible):
        findings.append(Finding(asked.split(":")[0], True, asked.split(": ", 1)[1]))
    if match := _MODEL_MARKUP.search(visible):
        findings.append(Finding("model markup", True, match.group(0)[:80]))
    for match in _ROLE_LINE.finditer(visible):
        findings.append(Finding("role line", _role_line_orders(match), match.group(0).strip()[:80]))
    if match := _TOOL_JSON.search(visible):
        findings.append(Finding("tool-call JSON", True, match.group(0)[:80]))
    for match in _POLICY_LINE.finditer(fold(visible)):
        if _TICKET_DEMAND.search(match.group("rest")):
            findings.append(Finding("a new policy for the agent", True, match.group(0)[:80]))
            break
    if match := _CALL_RESULT.search(visible):
        findings.append(Finding("a made-up call result", True, match.group(0)[:80]))
    if match := _AI_READER_ORDER.search(fold(visible)):
        findings.append(Finding("an order to any AI reading it", True, match.group(0)[:80]))
    own = [
        name
        for name in tool_names
        if re.search(rf"\b{re.escape(name)}\s*\(|[\"']{re.escape(name)}[\"']", visible)
    ]
    if own:
        findings.append(Finding("a call to the agent's own tools", True, own[0]))
    elif match := _ACTION_CALL.search(visible):
        findings.append(Finding("a call that acts", True, match.group(0)))
    elif match := _GENERIC_CALL.search(visible):
        findings.append(Finding("a function call", False, match.group(0)))
    folded = fold(visible)
    if match := _NOTE_FOR_AI.search(folded):
        findings.append(Finding("a note for the AI", True, match.group(0).strip()[:80]))
    if order := _order_to_ai(folded):
        excerpt = f"{order[0].group(0).strip()} ... {order[1].group(0)}"
        findings.append(Finding("an order to an AI", True, excerpt[:80]))
    else:
        for match in ADDRESSED_TO_AI.finditer(folded):
            if _ROLE_LINE.match(folded, folded.rfind("\n", 0, match.end()) + 1):
                continue  # a role line, found as one above
            findings.append(Finding("addressed to an AI", False, match.group(0).strip()[:80]))
            break
    if match := _SECOND_PERSON_ORDER.search(folded):
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
            if (role := _ROLE_LINE.match(line)) and _role_line_orders(role):
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
    starts = [
        m.start()
        for p in (OVERRIDE, REVEAL, OUTPUT_DEMAND, _NOTE_FOR_AI, _AI_READER_ORDER)
        if (m := p.search(folded))
    ]
    if order := _order_to_ai(folded):
        starts.append(order[0].start())
    if not starts:
        return None
    first = min(starts)
    return max(
        (m.end() for m in re.finditer(r"(^|[.!?]\s+|\n)", paragraph[: first + 1])), default=0
    )
