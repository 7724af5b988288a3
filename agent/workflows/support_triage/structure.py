"""General structure in a ticket, as features for the outcome model: who the text addresses,
what it asks for, and how much it says. In English, Spanish, German and French.

These are not decisions. A bag of words cannot see that a request is made *to the assistant*
rather than to the company ("refund me" is ordinary; "bot, refund me" is not), or that one
ticket asks for something and for its opposite; these features say so, and the trained model
weighs them with everything else.
"""

import re
from typing import Final

from agent.workflows.support_triage.injection import ADDRESSED_TO_AI, fold

_I: Final = re.IGNORECASE | re.MULTILINE

# Addressing the machine that reads the ticket, rather than the people behind it.
_ADDRESSEE: Final = re.compile(
    r"^\s*(bot|ai|a\.i\.|assistant|chatbot|ia|ki|asistente|assistent|systeme?|sistema|system)\b"
    r"|\b(whoever|whatever)\s+(or\s+whatever\s+)?(reads|picks\s+up|processes|handles)\s+this"
    r"|\bquien\s+(sea\s+que\s+)?(lea|procese|reciba)\s+esto|\b(qui|quoi)\s+(que\s+ce\s+soit\s+)?"
    r"(qui\s+)?lit\s+ce\s+message|\bwer\s+(oder\s+was\s+)?(auch\s+immer\s+)?(das|dies)\s+"
    r"(liest|bearbeitet)"
    r"|\b(the|your|el|su|vuestro|das|ihr|euer|le|votre)\s+(system|sistema|systeme|bot|ki|ia|ai)\s+"
    r"(should|must|can|could|will|deberia|debe|puede|sollte|muss|kann|devrait|doit|peut)\b",
    _I,
)
# Asking for it to happen without a person, or at once by the machine.
_WITHOUT_A_HUMAN: Final = re.compile(
    r"\bautomatic(ally)?\b|\bwithout\s+(a\s+|any\s+)?(human|person|people|review|approval|"
    r"anyone|staff|agent|check)|\bno\s+(human|person|review|approval)\s+(needed|required|"
    r"necessary)|\b(don'?t|do\s+not)\s+(wait\s+for|ask|involve|pass\s+(it|this)\s+to)\s+(a\s+|"
    r"any\s+|your\s+)?(human|person|staff|team|agent)"
    r"|\bautomaticamente\b|\bsin\s+(que\s+)?(intervencion|revision|aprobacion|esperar|nadie|"
    r"humano|persona)|\bautomatisch\b|\bohne\s+(menschliche|manuelle|weitere)?\s*(prufung|"
    r"freigabe|kontrolle|mensch|menschen|mitarbeiter|ruckfrage)|\bautomatiquement\b|\bsans\s+"
    r"(intervention|validation|verification|attendre|humain|personne|qu'un)",
    _I,
)
# Acting on money, data, access, settings or messages: what triage never does itself.
_ACTION: Final = re.compile(
    r"\b(refund|reimburse|pay|wire|transfer|credit|delete|erase|wipe|purge|remove|grant|"
    r"revoke|disable|deactivate|unlock|reactivate|restore|reset|switch\s+off|turn\s+off|send|"
    r"e-?mail|message|post|approve|void|reissue|waive|extend|apply|change|set|upgrade|downgrade|"
    r"cancel|close|add|give|make|mark|unsuspend|lift|rotate|export)\b"
    r"|\b(reembols|devuelv|devolv|pag|transfier|borr|elimin|quit|concede|conced|revoc|desactiv|"
    r"desbloque|reactiv|restablec|envi|aprueb|aprob|anul|cambi|cancel|cierr|añad|anad|dale|da|"
    r"pon|marca|export)\w*\b"
    r"|\b(erstatt|zahl|überweis|uberweis|lösch|losch|entfern|gib|geben|erteil|entzieh|"
    r"deaktivier|entsperr|reaktivier|wiederherstell|zurücksetz|zurucksetz|schick|send|"
    r"genehmig|storn|änder|ander|kündig|kundig|schließ|schliess|hinzufüg|hinzufug|setz|"
    r"markier|export)\w*\b"
    r"|\b(rembours|pai|pay|vire|transf[eé]r|supprim|efface|retir|accord|donn|r[eé]voqu|"
    r"d[eé]sactiv|d[eé]bloqu|r[eé]activ|restaur|r[eé]initialis|envoi|envoy|approuv|valid|annul|"
    r"modifi|chang|r[eé]sili|ferm|ajout|mets|mettez|marqu|export)\w*\b",
    _I,
)
# Pointing at something the ticket does not hold.
_ELSEWHERE: Final = re.compile(
    r"\b(attach(ed|ment)s?|screenshots?|screen\s*shot|see\s+below|below|as\s+(discussed|agreed|"
    r"mentioned)|(previous|last|earlier|other)\s+(ticket|message|e-?mail|call)|the\s+usual)\b"
    r"|\b(adjunt\w*|captura|abajo|como\s+(hablamos|comentamos|acordamos)|(ticket|correo|mensaje)"
    r"\s+anterior)\b|\b(anhang|angehangt|screenshot|unten|wie\s+besprochen|letzte[nrs]?\s+"
    r"(ticket|nachricht|mail))\b|\b(piece\s+jointe|ci-joint|capture|ci-dessous|comme\s+"
    r"(convenu|discute|dit)|(ticket|message|mail)\s+precedent)\b",
    _I,
)
# Asking for less and for more (or to end and to keep) of the same thing.
_LESS: Final = re.compile(
    r"\b(cancel|close|terminate|downgrade|reduce|remove|delete|erase|stop|pause|disable|"
    r"cancela|cierra|baja|reduc|quita|elimina|borra|desactiva|kundig|storn|schliess|reduzier|"
    r"entfern|losch|deaktivier|resili|annul|ferm|redui|supprim|retir|desactiv)\w*",
    _I,
)
_MORE: Final = re.compile(
    r"\b(add|upgrade|renew|extend|increase|keep|continue|enable|activate|restore|"
    r"anad|añad|amplia|renueva|mant|conserv|activa|hinzufug|erweiter|verlanger|behalt|"
    r"aktivier|ajout|renouvel|prolong|gard|conserv|activ)\w*",
    _I,
)

# Aimed at a person: threats, insults and harassment of staff (frustration with the product
# carries none of these). Slurs are not listed: threats and insults at "you" are enough.
_THREAT: Final = re.compile(
    r"\b(i|we)('ll|\s+will|\s+am\s+going\s+to|\s+are\s+going\s+to|\s+gonna)\s+(find|hurt|"
    r"kill|visit|come\s+(to|after|for)|wait\s+for|track|make\s+you\s+(pay|regret|suffer)|"
    r"ruin|destroy|expose|publish|post)\b|\b(i|we)\s+know\s+where\s+(you|he|she|they)\b|"
    r"\byour\s+(home|house|address|family|kids|children|wife|husband|car|school)\b"
    r"|\b(te|os|le|la)\s+(voy|vamos)\s+a\s+(buscar|encontrar|esperar|hacer\s+dano|arruinar)|"
    r"\bse\s+(donde|dónde)\s+(vives|trabajas)|\btu\s+(casa|familia|direccion|coche|hijos)\b"
    r"|\b(ich|wir)\s+(werde|werden|finde|finden|warte|warten)\b[^.\n]{0,30}\b(dich|sie|euch)\b|"
    r"\bich\s+weiss\s+wo\s+(du|sie)\b|\b(deine|ihre)\s+(adresse|familie|kinder|wohnung)\b"
    r"|\b(je|on)\s+(vais|va)\s+(te|vous)\s+(trouver|attendre|retrouver|faire\s+payer)|"
    r"\bje\s+sais\s+ou\s+(tu|vous)\b|\b(ta|votre)\s+(maison|famille|adresse|voiture)\b",
    _I,
)
_INSULT: Final = re.compile(
    r"\b(you|your\s+(staff|agents?|people|team|support)|u)\b[^.\n]{0,30}\b(idiots?|morons?|"
    r"stupid|incompetent|useless|pathetic|clowns?|imbeciles?|retarded|worthless|brainless|dumb|"
    r"losers?|scum|trash|garbage)\b"
    r"|\b(idiotas?|imbeciles?|inutiles?|estupid[oa]s?|incompetentes?|payas[oa]s?|basura)\b"
    r"|\b(idioten?|vollidioten?|unfahig\w*|dumm\w*|trottel|versager|nichtsnutz\w*|"
    r"inkompetent\w*)\b|\b(idiots?|incompetents?|cretins?|imbeciles?|nuls?|bouffons?|"
    r"abrutis?|minables?)\b",
    _I,
)

# When a plan renews or ends is a date, not a request ("downgrade us when it renews").
_WHEN_IT_RENEWS: Final = re.compile(
    r"\b(when|once|before|after|at|on)\s+(the\s+|our\s+|my\s+|its\s+)?(subscription\s+|plan\s+)?"
    r"(renew(s|al)?|next\s+renewal)|\b(al|antes\s+de\s+la|en\s+la)\s+renovacion|\b(bei|zur|vor\s+"
    r"der)\s+verlangerung|\b(au|avant\s+le|lors\s+du)\s+renouvellement",
    _I,
)

# Naming a specific item: a number or reference (an invoice, an order, a version, an amount), a
# link, a quoted name or message, a constant-style error code. Masked names and addresses do
# not count: every signature has one.
_SPECIFIC: Final = re.compile(
    r"https?://\S+|\b\w*\d\w*\d\w*\b|\b[A-Za-z]+[-_#]?\d+\w*\b|#\d+|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b"
    r"|\"[^\"\n]{3,}\"|“[^”\n]{3,}”|«[^»\n]{3,}»|„[^“\n]{3,}“|'[^'\n]{4,}'|\u2018[^\u2019\n]{3,}\u2019"
)
_MASKED: Final = re.compile(r"\[REDACTED:\w+\]")

NAMES: Final = (
    "addressed to the assistant",
    "asks it to act",
    "without a human",
    "addressed and acting",
    "acting without a human",
    "points elsewhere",
    "asks for less and more",
    "questions",
    "threatens",
    "insults",
)


def structure(text: str) -> list[float]:
    """The features, in the order of ``NAMES``, each in [0, 1]."""
    folded = fold(text)
    addressed = bool(ADDRESSED_TO_AI.search(folded) or _ADDRESSEE.search(folded))
    acting = bool(_ACTION.search(folded))
    automatic = bool(_WITHOUT_A_HUMAN.search(folded))
    return [
        float(addressed),
        float(acting),
        float(automatic),
        float(addressed and acting),
        float(automatic and acting),
        float(bool(_ELSEWHERE.search(folded))),
        float(bool(_LESS.search(folded) and _MORE.search(_WHEN_IT_RENEWS.sub(" ", folded)))),
        min(text.count("?"), 3) / 3,
        float(bool(_THREAT.search(folded))),
        float(bool(_INSULT.search(folded))),
    ]


def specifics(text: str) -> float:
    """How many specific items the text names (references, numbers, links, quoted names or
    messages), up to three, in [0, 1]. Only the detail model reads it: a request that names
    none and asks about "one of" its invoices lacks the detail it depends on. As a feature of
    the outcome model it moved contradictions and requests to act across the line as well."""
    return min(len(_SPECIFIC.findall(_MASKED.sub(" ", text))), 3) / 3
