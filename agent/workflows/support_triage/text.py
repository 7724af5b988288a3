"""Words of a ticket, in any of the languages the agent reads."""

import re
from typing import Final

_WORD: Final = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
# Words that say nothing about what a ticket is about: articles, pronouns, greetings, fillers
# and the generic vocabulary of asking for help, in English, Spanish, German and French.
GENERIC_WORDS: Final = frozenset(
    """a an the and or but if then so to of in on at for from with by is are was were be been
    it its this that these those i me my we our us you your he she they them hi hello hey
    dear thanks thank regards best cheers please pls help fix fixed issue issues problem
    problems broken work works working doesn't don't isn't not no yes can can't cannot
    could would should do does did done get got have has had just still again now today
    any some something anything thing things stuff asap urgent team support sir madam
    there here what when why how who which all very really ok okay
    el la los las un una unos unas y o pero si que de del en con por para es son fue ser
    esto eso este esta mi mis nuestro nuestra tu su hola gracias saludos por favor ayuda
    problema no sí ya hoy algo cosa muy
    der die das den dem des ein eine einen einem und oder aber wenn dass von zu im in mit
    für auf ist sind war sein es dies diese mein meine unser unsere ihr sie wir ich hallo
    danke grüße bitte hilfe problem nicht ja schon heute etwas sache sehr
    le la les un une des et ou mais si que de du en avec pour par est sont était être ce
    cette mon ma mes notre nos votre vos bonjour merci cordialement svp aide problème ne
    pas oui déjà aujourd'hui chose très""".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def signal_words(text: str) -> list[str]:
    """The words that say something about the request (no greetings, fillers or stopwords)."""
    return [word for word in words(text) if word not in GENERIC_WORDS and len(word) > 1]
