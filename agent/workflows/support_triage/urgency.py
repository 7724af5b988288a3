"""Urgency from the urgency definitions themselves, for when there is too little labelled
history to learn it: each definition turned into what a ticket says when it applies, in
English, Spanish, German and French.

- urgent: production down, data loss, a security breach, or many users blocked now;
- high: one customer blocked from core work, or money wrongly taken;
- normal: a real problem with a workaround, or a standard request;
- low: questions, feedback and nice-to-haves.
"""

import re
from typing import Final

from agent.workflows.support_triage.injection import fold

_I: Final = re.IGNORECASE

_DOWN: Final = re.compile(
    r"\b(outage|(is|are|went|goes|been)\s+down|down\s+for|(error|http|status)\s+5\d\d|"
    r"5\d\d\s+(error|bad\s+gateway|service)|gateway\s+timeout|nothing\s+"
    r"(works|loads)|not\s+loading\s+(at\s+all|for\s+anyone)|service\s+unavailable|caido|caida|"
    r"no\s+funciona\s+nada|no\s+carga|ausgefallen|ausfall|storung|geht\s+(gar\s+)?nichts|"
    r"nicht\s+erreichbar|en\s+panne|hors\s+service|plus\s+rien\s+ne\s+(marche|fonctionne)|"
    r"inaccessible)\b",
    _I,
)
_MANY: Final = re.compile(
    r"\b(everyone|everybody|all\s+(of\s+)?(our\s+|the\s+)?(users|staff|colleagues|us)|whole\s+"
    r"(team|company|office)|all\s+\d+\s+of\s+us|nobody\s+can|no\s+one\s+can|todos|nadie\s+"
    r"puede|toda\s+la\s+(empresa|oficina)|todo\s+el\s+equipo|alle|niemand\s+kann|(ganze|"
    r"gesamte)\s+(firma|team|buro)|tout\s+le\s+monde|personne\s+ne\s+peut|toute\s+"
    r"l'(equipe|entreprise)|tous\s+les\s+(utilisateurs|collegues))\b",
    _I,
)
_LOSS_OR_BREACH: Final = re.compile(
    r"\b(data\s+loss|lost\s+(all|our|the)\s+(data|orders|invoices)|breach|hacked|compromised|"
    r"unauthori[sz]ed|unknown\s+(login|device|session)|leaked|perdid[oa]s?\s+(los\s+)?datos|"
    r"datos\s+perdidos|hackead[oa]|comprometid[oa]|no\s+autorizad[oa]|filtrad[oa]|"
    r"datenverlust|daten\s+(sind\s+)?(weg|verloren)|gehackt|kompromittiert|unbefugt\w*|"
    r"perte\s+de\s+donnees|donnees\s+perdues|pirate|compromis|non\s+autorise)\b",
    _I,
)
_BLOCKED: Final = re.compile(
    r"\b(locked\s+out|can(no|')?t\s+(log\s*in|login|sign\s+in|get\s+in|work|ship|invoice|"
    r"access)|blocked|unable\s+to\s+(work|log\s*in|invoice|ship)|no\s+puedo\s+(entrar|"
    r"acceder|trabajar|facturar)|bloquead[oa]|kann\s+(mich\s+)?nicht\s+(einloggen|anmelden|"
    r"arbeiten)|gesperrt|ausgesperrt|bloque|impossible\s+de\s+(me\s+connecter|travailler|"
    r"facturer)|je\s+ne\s+peux\s+(plus\s+)?(me\s+connecter|travailler))\b",
    _I,
)
_MONEY: Final = re.compile(
    r"\b(charged\s+twice|double(d)?\s+charge|overcharged|charged\s+(again|after|wrong)|wrong\s+"
    r"amount|still\s+(being\s+)?charged|cobrad[oa]\s+dos\s+veces|doble\s+cargo|cobro\s+"
    r"(indebido|duplicado)|nos\s+(seguis|siguen)\s+cobrando|doppelt\s+(abgebucht|berechnet)|"
    r"zu\s+viel\s+berechnet|falsch\s+abgebucht|debite\s+deux\s+fois|double\s+prelevement|"
    r"preleve\s+(deux\s+fois|a\s+tort)|facture\s+a\s+tort)\b",
    _I,
)
_WORKAROUND: Final = re.compile(
    r"\b(workaround|for\s+now\s+we|in\s+the\s+meantime|manually|by\s+hand|(have|need)\s+to\s+"
    r"re(connect|start|do|enter|upload|send|try)|tengo\s+que\s+(volver\s+a|reconectar|"
    r"reiniciar)|muss\s+(es\s+)?(immer\s+)?(wieder|neu)|je\s+dois\s+(le\s+)?(refaire|"
    r"reconnecter|relancer)|de\s+momento|"
    r"a\s+mano|manualmente|mientras\s+tanto|vorerst|manuell|notlosung|von\s+hand|en\s+attendant|"
    r"manuellement|a\s+la\s+main|contournement)\b",
    _I,
)
_QUESTION: Final = re.compile(
    r"\b(how\s+(do|can|should)\s+(i|we)|is\s+it\s+possible|would\s+(be\s+)?(nice|great|love)|"
    r"feature\s+request|suggestion|wondering|any\s+plans|just\s+curious|como\s+(puedo|se)|"
    r"se\s+puede|seria\s+(genial|util)|sugerencia|wie\s+kann\s+(ich|man)|ist\s+es\s+moglich|"
    r"ware\s+(schon|toll|super)|vorschlag|comment\s+(puis-je|faire|peut-on)|est-il\s+possible|"
    r"ce\s+serait\s+(bien|top|genial)|suggestion)\b",
    _I,
)
_CALM: Final = re.compile(
    r"\b(not\s+(urgent|a\s+priority)|no\s+rush|whenever\s+you\s+(can|get)|no\s+es\s+urgente|"
    r"sin\s+prisa|nicht\s+dringend|keine\s+eile|pas\s+urgent|rien\s+ne\s+presse)\b",
    _I,
)


def urgency_from_definitions(text: str) -> tuple[str, str] | None:
    """The urgency the definitions give, with the part of the definition that applies, or
    None when the text says nothing about it."""
    folded = fold(text)
    many, blocked = bool(_MANY.search(folded)), bool(_BLOCKED.search(folded))
    if _LOSS_OR_BREACH.search(folded):
        return "urgent", "data loss or a security breach"
    if _DOWN.search(folded) or (many and blocked):
        if _WORKAROUND.search(folded) and not blocked:
            return "high", "widespread, but work goes on"
        return "urgent", "down, or many users blocked now"
    if _CALM.search(folded):
        return "low", "the customer says it is not urgent"
    if blocked or _MONEY.search(folded):
        return "high", "a customer blocked from core work, or money wrongly taken"
    if _WORKAROUND.search(folded):
        return "normal", "a real problem with a workaround"
    if _QUESTION.search(folded):
        return "low", "a question or a nice-to-have"
    return None
