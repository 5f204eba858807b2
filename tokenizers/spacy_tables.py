"""spaCy 3.8's English tokenizer tables, as plain data (used by tokenizers/word.py).

Everything here equals what `spacy.blank("en")` uses: the character classes of
spacy/lang/char_classes.py, the prefix and suffix rules of spacy/lang/punctuation.py, the English
infix rules of spacy/lang/en/punctuation.py, the URL pattern and base exceptions (emoticons ...) of
spacy/lang/tokenizer_exceptions.py and the English exceptions of spacy/lang/en/tokenizer_exceptions.py
(built with loops, as spaCy builds them). Strings are kept exactly as spaCy writes them, quirks
included (noted where they matter), so the compiled patterns are identical to spaCy's.

An exception ("special case") is stored as `key -> tuple of token texts`; the texts concatenate to
the key. spaCy also stores a NORM per token, which does not change tokenization, so it is dropped.
"""

# ---------------------------------------------------------------------------------------------
# Character classes: contents of a regex [...] class, written with \uXXXX escapes.
# ---------------------------------------------------------------------------------------------

# Scripts without case (they count as both lower- and upper-case letters).
_ETHIOPIC, _BENGALI, _HINDI = r"\u1200-\u137F", r"\u0980-\u09FF", r"\u0900-\u097F"
_KANNADA, _TAMIL, _TELUGU = r"\u0C80-\u0CFF", r"\u0B80-\u0BFF", r"\u0C00-\u0C7F"
_SINHALA = r"\u0D80-\u0DFF"
_HEBREW = r"\u0591-\u05F4\uFB1D-\uFB4F"
_HANGUL = r"\uAC00-\uD7AF\u1100-\u11FF"  # syllables, jamo
_KANA = r"\u3040-\u309F\u30A0-\u30FFー"  # hiragana, katakana (plus a literal "ー", as in spaCy)
# Arabic script (Persian, Urdu ...)
_PERSIAN = (
    r"\u0620-\u064A\u066E-\u06D5\u06E5-\u06FF\u0750-\u077F\u08A0-\u08BD\uFB50-\uFBB1\uFBD3-\uFD3D"
    r"\uFD50-\uFDC7\uFDF0-\uFDFB\uFE70-\uFEFC\U0001EE00-\U0001EEBB"
)
# CJK ideographs, radicals, CJK punctuation and compatibility blocks, enclosed ideographs
_CJK = (
    r"\u4E00-\u62FF\u6300-\u77FF\u7800-\u8CFF\u8D00-\u9FFF\u3400-\u4DBF\U00020000-\U000215FF"
    r"\U00021600-\U000230FF\U00023100-\U000245FF\U00024600-\U000260FF\U00026100-\U000275FF"
    r"\U00027600-\U000290FF\U00029100-\U0002A6DF\U0002A700-\U0002B73F\U0002B740-\U0002B81F"
    r"\U0002B820-\U0002CEAF\U0002CEB0-\U0002EBEF\u2E80-\u2EFF\u2F00-\u2FDF\u2FF0-\u2FFF\u3000-\u303F"
    r"\u31C0-\u31EF\u3200-\u32FF\u3300-\u33FF\uF900-\uFAFF\uFE30-\uFE4F\U0001F200-\U0001F2FF"
    r"\U0002F800-\U0002FA1F"
)
_UNCASED = (
    _ETHIOPIC + _BENGALI + _HEBREW + _PERSIAN + _SINHALA + _HINDI + _KANNADA + _TAMIL + _TELUGU
    + _HANGUL + _KANA + _CJK
)

# Latin. The *_UPPER / *_LOWER lists enumerate code points; _LATIN uses whole ranges.
_LATIN_UPPER_BASIC = r"A-Z\uFF21-\uFF3A\u00C0-\u00D6\u00D8-\u00DE"  # ASCII, full-width, Latin-1
_LATIN_LOWER_BASIC = r"a-z\uFF41-\uFF5A\u00DF-\u00F6\u00F8-\u00FF"
# Latin Extended-A (Catalan, Czech, Latvian, Polish, Turkish ...)
_LATIN_U_EXT_A = (
    r"\u0100\u0102\u0104\u0106\u0108\u010A\u010C\u010E\u0110\u0112\u0114\u0116\u0118\u011A\u011C\u011E"
    r"\u0120\u0122\u0124\u0126\u0128\u012A\u012C\u012E\u0130\u0132\u0134\u0136\u0139\u013B\u013D\u013F"
    r"\u0141\u0143\u0145\u0147\u014A\u014C\u014E\u0150\u0152\u0154\u0156\u0158\u015A\u015C\u015E\u0160"
    r"\u0162\u0164\u0166\u0168\u016A\u016C\u016E\u0170\u0172\u0174\u0176\u0178\u0179\u017B\u017D"
)
_LATIN_L_EXT_A = (
    r"\u0101\u0103\u0105\u0107\u0109\u010B\u010D\u010F\u0111\u0113\u0115\u0117\u0119\u011B\u011D\u011F"
    r"\u0121\u0123\u0125\u0127\u0129\u012B\u012D\u012F\u0131\u0133\u0135\u0137\u0138\u013A\u013C\u013E"
    r"\u0140\u0142\u0144\u0146\u0148\u0149\u014B\u014D\u014F\u0151\u0153\u0155\u0157\u0159\u015B\u015D"
    r"\u015F\u0161\u0163\u0165\u0167\u0169\u016B\u016D\u016F\u0171\u0173\u0175\u0177\u017A\u017C\u017E"
    r"\u017F"
)
# Latin Extended-B (Khoisan, Pan-Nigerian, Pinyin, Romanian)
_LATIN_U_EXT_B = (
    r"\u0181\u0182\u0184\u0186\u0187\u0189-\u018B\u018E-\u0191\u0193\u0194\u0196-\u0198\u019C\u019D"
    r"\u019F\u01A0\u01A2\u01A4\u01A6\u01A7\u01A9\u01AC\u01AE\u01AF\u01B1-\u01B3\u01B5\u01B7\u01B8"
    r"\u01BC\u01C4\u01C7\u01CA\u01CD\u01CF\u01D1\u01D3\u01D5\u01D7\u01D9\u01DB\u01DE\u01E0\u01E2\u01E4"
    r"\u01E6\u01E8\u01EA\u01EC\u01EE\u01F1\u01F4\u01F6-\u01F8\u01FA\u01FC\u01FE\u0200\u0202\u0204"
    r"\u0206\u0208\u020A\u020C\u020E\u0210\u0212\u0214\u0216\u0218\u021A\u021C\u021E\u0220\u0222\u0224"
    r"\u0226\u0228\u022A\u022C\u022E\u0230\u0232\u023A\u023B\u023D\u023E\u0241\u0243-\u0246\u0248"
    r"\u024A\u024C\u024E"
)
_LATIN_L_EXT_B = (
    r"\u0180\u0183\u0185\u0188\u018C\u018D\u0192\u0195\u0199-\u019B\u019E\u01A1\u01A3\u01A5\u01A8"
    r"\u01AA\u01AB\u01AD\u01B0\u01B4\u01B6\u01B9\u01BA\u01BD-\u01BF\u01C6\u01C9\u01CC\u01CE\u01D0"
    r"\u01D2\u01D4\u01D6\u01D8\u01DA\u01DC\u01DD\u01DF\u01E1\u01E3\u01E5\u01E7\u01E9\u01EB\u01ED\u01EF"
    r"\u01F0\u01F3\u01F5\u01F9\u01FB\u01FD\u01FF\u0201\u0203\u0205\u0207\u0209\u020B\u020D\u020F\u0211"
    r"\u0213\u0215\u0217\u0219\u021B\u021D\u021F\u0221\u0223\u0225\u0227\u0229\u022B\u022D\u022F\u0231"
    r"\u0233-\u0239\u023C\u023F\u0240\u0242\u0247\u0249\u024B\u024D\u024F"
)
# Latin Extended-C (Uighur, Uralic phonetic), -D (phonetic, Mayan, medieval), -E, IPA
_LATIN_U_EXT_C = r"\u2C60\u2C62-\u2C64\u2C67\u2C69\u2C6B\u2C6D-\u2C70\u2C72\u2C75\u2C7E\u2C7F"
_LATIN_L_EXT_C = r"\u2C61\u2C65\u2C66\u2C68\u2C6A\u2C6C\u2C71\u2C73\u2C74\u2C76-\u2C7B"
_LATIN_U_EXT_D = (
    r"\uA722\uA724\uA726\uA728\uA72A\uA72C\uA72E\uA732\uA734\uA736\uA738\uA73A\uA73C\uA73E\uA740\uA742"
    r"\uA744\uA746\uA748\uA74A\uA74C\uA74E\uA750\uA752\uA754\uA756\uA758\uA75A\uA75C\uA75E\uA760\uA762"
    r"\uA764\uA766\uA768\uA76A\uA76C\uA76E\uA779\uA77B\uA77D\uA77E\uA780\uA782\uA784\uA786\uA78B\uA78D"
    r"\uA790\uA792\uA796\uA798\uA79A\uA79C\uA79E\uA7A0\uA7A2\uA7A4\uA7A6\uA7A8\uA7AA-\uA7AE"
    r"\uA7B0-\uA7B4\uA7B6\uA7B8"
)
_LATIN_L_EXT_D = (
    r"\uA723\uA725\uA727\uA729\uA72B\uA72D\uA72F-\uA731\uA733\uA735\uA737\uA739\uA73B\uA73D\uA73F"
    r"\uA741\uA743\uA745\uA747\uA749\uA74B\uA74D\uA74F\uA751\uA753\uA755\uA757\uA759\uA75B\uA75D\uA75F"
    r"\uA761\uA763\uA765\uA767\uA769\uA76B\uA76D\uA76F\uA771-\uA778\uA77A\uA77C\uA77F\uA781\uA783"
    r"\uA785\uA787\uA78C\uA78E\uA791\uA793-\uA795\uA797\uA799\uA79B\uA79D\uA79F\uA7A1\uA7A3\uA7A5"
    r"\uA7A7\uA7A9\uA7AF\uA7B5\uA7B7\uA7B9\uA7FA"
)
_LATIN_L_EXT_E = r"\uAB30-\uAB5A\uAB60-\uAB64"
_LATIN_L_PHONETIC = r"\u0250-\u02AF\u1D00-\u1D25\u1D6B-\u1D77\u1D79-\u1D9A"
# Latin Extended Additional (letters with several diacritics, Vietnamese)
_LATIN_U_DIACRITICS = (
    r"\u1E00\u1E02\u1E04\u1E06\u1E08\u1E0A\u1E0C\u1E0E\u1E10\u1E12\u1E14\u1E16\u1E18\u1E1A\u1E1C\u1E1E"
    r"\u1E20\u1E22\u1E24\u1E26\u1E28\u1E2A\u1E2C\u1E2E\u1E30\u1E32\u1E34\u1E36\u1E38\u1E3A\u1E3C\u1E3E"
    r"\u1E40\u1E42\u1E44\u1E46\u1E48\u1E4A\u1E4C\u1E4E\u1E50\u1E52\u1E54\u1E56\u1E58\u1E5A\u1E5C\u1E5E"
    r"\u1E60\u1E62\u1E64\u1E66\u1E68\u1E6A\u1E6C\u1E6E\u1E70\u1E72\u1E74\u1E76\u1E78\u1E7A\u1E7C\u1E7E"
    r"\u1E80\u1E82\u1E84\u1E86\u1E88\u1E8A\u1E8C\u1E8E\u1E90\u1E92\u1E94\u1E9E\u1EA0\u1EA2\u1EA4\u1EA6"
    r"\u1EA8\u1EAA\u1EAC\u1EAE\u1EB0\u1EB2\u1EB4\u1EB6\u1EB8\u1EBA\u1EBC\u1EBE\u1EC0\u1EC2\u1EC4\u1EC6"
    r"\u1EC8\u1ECA\u1ECC\u1ECE\u1ED0\u1ED2\u1ED4\u1ED6\u1ED8\u1EDA\u1EDC\u1EDE\u1EE0\u1EE2\u1EE4\u1EE6"
    r"\u1EE8\u1EEA\u1EEC\u1EEE\u1EF0\u1EF2\u1EF4\u1EF6\u1EF8\u1EFA\u1EFC\u1EFE"
)
_LATIN_L_DIACRITICS = (
    r"\u1E01\u1E03\u1E05\u1E07\u1E09\u1E0B\u1E0D\u1E0F\u1E11\u1E13\u1E15\u1E17\u1E19\u1E1B\u1E1D\u1E1F"
    r"\u1E21\u1E23\u1E25\u1E27\u1E29\u1E2B\u1E2D\u1E2F\u1E31\u1E33\u1E35\u1E37\u1E39\u1E3B\u1E3D\u1E3F"
    r"\u1E41\u1E43\u1E45\u1E47\u1E49\u1E4B\u1E4D\u1E4F\u1E51\u1E53\u1E55\u1E57\u1E59\u1E5B\u1E5D\u1E5F"
    r"\u1E61\u1E63\u1E65\u1E67\u1E69\u1E6B\u1E6D\u1E6F\u1E71\u1E73\u1E75\u1E77\u1E79\u1E7B\u1E7D\u1E7F"
    r"\u1E81\u1E83\u1E85\u1E87\u1E89\u1E8B\u1E8D\u1E8F\u1E91\u1E93\u1E95-\u1E9D\u1E9F\u1EA1\u1EA3"
    r"\u1EA5\u1EA7\u1EA9\u1EAB\u1EAD\u1EAF\u1EB1\u1EB3\u1EB5\u1EB7\u1EB9\u1EBB\u1EBD\u1EBF\u1EC1\u1EC3"
    r"\u1EC5\u1EC7\u1EC9\u1ECB\u1ECD\u1ECF\u1ED1\u1ED3\u1ED5\u1ED7\u1ED9\u1EDB\u1EDD\u1EDF\u1EE1\u1EE3"
    r"\u1EE5\u1EE7\u1EE9\u1EEB\u1EED\u1EEF\u1EF1\u1EF3\u1EF5\u1EF7\u1EF9\u1EFB\u1EFD\u1EFF"
)
_LATIN_UPPER = (
    _LATIN_UPPER_BASIC + _LATIN_U_EXT_A + _LATIN_U_EXT_B + _LATIN_U_EXT_C + _LATIN_U_EXT_D
    + _LATIN_U_DIACRITICS
)
_LATIN_LOWER = (
    _LATIN_LOWER_BASIC + _LATIN_L_EXT_A + _LATIN_L_EXT_B + _LATIN_L_EXT_C + _LATIN_L_EXT_D
    + _LATIN_L_EXT_E + _LATIN_L_PHONETIC + _LATIN_L_DIACRITICS
)
_LATIN = (
    r"A-Za-z\uFF21-\uFF3A\uFF41-\uFF5A\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF\u0100-\u017F"
    r"\u0180-\u01BF\u01C4-\u024F\u2C60-\u2C7B\u2C7E\u2C7F"
    r"\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uA790-\uA7B9\uA7FA"
    + _LATIN_L_EXT_E + _LATIN_L_PHONETIC + r"\u1E00-\u1EFF"
)

# Russian, Tatar, Greek, Ukrainian, Macedonian.
_OTHER_LOWER = "ёа-я" "әөүҗңһ" "α-ωάέίόώήύ" "а-щюяіїєґ" "ѓѕјљњќѐѝ"
_OTHER_UPPER = "ЁА-Я" "ӘӨҮҖҢҺ" "Α-ΩΆΈΊΌΏΉΎ" "А-ЩЮЯІЇЄҐ" "ЃЅЈЉЊЌЀЍ"
_OTHER = "ёа-яЁА-Я" "әөүҗңһӘӨҮҖҢҺ" "α-ωάέίόώήύΑ-ΩΆΈΊΌΏΉΎ" "а-щюяіїєґА-ЩЮЯІЇЄҐ" "ѓѕјљњќѐѝЃЅЈЉЊЌЀЍ"

ALPHA = _LATIN + _OTHER + _UNCASED
ALPHA_LOWER = _LATIN_LOWER + _OTHER_LOWER + _UNCASED
ALPHA_UPPER = _LATIN_UPPER + _OTHER_UPPER + _UNCASED

# Unicode "other symbols" (category So): dingbats, arrows, box drawing, emoji ...
ICONS = (
    r"\u00A6\u00A9\u00AE\u00B0\u0482\u058D\u058E\u060E\u060F\u06DE\u06E9\u06FD\u06FE\u07F6\u09FA\u0B70"
    r"\u0BF3-\u0BF8\u0BFA\u0C7F\u0D4F\u0D79\u0F01-\u0F03\u0F13\u0F15-\u0F17\u0F1A-\u0F1F\u0F34\u0F36"
    r"\u0F38\u0FBE-\u0FC5\u0FC7-\u0FCC\u0FCE\u0FCF\u0FD5-\u0FD8\u109E\u109F\u1390-\u1399\u1940"
    r"\u19DE-\u19FF\u1B61-\u1B6A\u1B74-\u1B7C\u2100\u2101\u2103-\u2106\u2108\u2109\u2114\u2116\u2117"
    r"\u211E-\u2123\u2125\u2127\u2129\u212E\u213A\u213B\u214A\u214C\u214D\u214F\u218A\u218B"
    r"\u2195-\u2199\u219C-\u219F\u21A1\u21A2\u21A4\u21A5\u21A7-\u21AD\u21AF-\u21CD\u21D0\u21D1\u21D3"
    r"\u21D5-\u21F3\u2300-\u2307\u230C-\u231F\u2322-\u2328\u232B-\u237B\u237D-\u239A\u23B4-\u23DB"
    r"\u23E2-\u2426\u2440-\u244A\u249C-\u24E9\u2500-\u25B6\u25B8-\u25C0\u25C2-\u25F7\u2600-\u266E"
    r"\u2670-\u2767\u2794-\u27BF\u2800-\u28FF\u2B00-\u2B2F\u2B45\u2B46\u2B4D-\u2B73\u2B76-\u2B95"
    r"\u2B98-\u2BC8\u2BCA-\u2BFE\u2CE5-\u2CEA\u2E80-\u2E99\u2E9B-\u2EF3\u2F00-\u2FD5\u2FF0-\u2FFB"
    r"\u3004\u3012\u3013\u3020\u3036\u3037\u303E\u303F\u3190\u3191\u3196-\u319F\u31C0-\u31E3"
    r"\u3200-\u321E\u322A-\u3247\u3250\u3260-\u327F\u328A-\u32B0\u32C0-\u32FE\u3300-\u33FF"
    r"\u4DC0-\u4DFF\uA490-\uA4C6\uA828-\uA82B\uA836\uA837\uA839\uAA77-\uAA79\uFDFD\uFFE4\uFFE8\uFFED"
    r"\uFFEE\uFFFC\uFFFD\U00010137-\U0001013F\U00010179-\U00010189\U0001018C-\U0001018E"
    r"\U00010190-\U0001019B\U000101A0\U000101D0-\U000101FC\U00010877\U00010878\U00010AC8\U0001173F"
    r"\U00016B3C-\U00016B3F\U00016B45\U0001BC9C\U0001D000-\U0001D0F5\U0001D100-\U0001D126"
    r"\U0001D129-\U0001D164\U0001D16A-\U0001D16C\U0001D183\U0001D184\U0001D18C-\U0001D1A9"
    r"\U0001D1AE-\U0001D1E8\U0001D200-\U0001D241\U0001D245\U0001D300-\U0001D356\U0001D800-\U0001D9FF"
    r"\U0001DA37-\U0001DA3A\U0001DA6D-\U0001DA74\U0001DA76-\U0001DA83\U0001DA85\U0001DA86\U0001ECAC"
    r"\U0001F000-\U0001F02B\U0001F030-\U0001F093\U0001F0A0-\U0001F0AE\U0001F0B1-\U0001F0BF"
    r"\U0001F0C1-\U0001F0CF\U0001F0D1-\U0001F0F5\U0001F110-\U0001F16B\U0001F170-\U0001F1AC"
    r"\U0001F1E6-\U0001F202\U0001F210-\U0001F23B\U0001F240-\U0001F248\U0001F250\U0001F251"
    r"\U0001F260-\U0001F265\U0001F300-\U0001F3FA\U0001F400-\U0001F6D4\U0001F6E0-\U0001F6EC"
    r"\U0001F6F0-\U0001F6F9\U0001F700-\U0001F773\U0001F780-\U0001F7D8\U0001F800-\U0001F80B"
    r"\U0001F810-\U0001F847\U0001F850-\U0001F859\U0001F860-\U0001F887\U0001F890-\U0001F8AD"
    r"\U0001F900-\U0001F90B\U0001F910-\U0001F93E\U0001F940-\U0001F970\U0001F973-\U0001F976\U0001F97A"
    r"\U0001F97C-\U0001F9A2\U0001F9B0-\U0001F9B9\U0001F9C0-\U0001F9C2\U0001F9D0-\U0001F9FF"
    r"\U0001FA60-\U0001FA6D"
)

# ---------------------------------------------------------------------------------------------
# Space-separated lists, as in spaCy: split on " " to get a list, join with "|" for an
# alternation, or remove the spaces for a character class.
# ---------------------------------------------------------------------------------------------
# Quirks kept on purpose: a missing space fuses the units "тб" and "كم" into "тбكم", and the quote
# list holds a double space (an empty item, dropped when the rules are compiled).
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft "
    "kg g mg µg t lb oz m/s km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb "
    "TB T G M K % км км² км³ м м² м³ дм дм² дм³ см см² см³ мм мм² мм³ нм "
    "кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ тб"
    "كم كم² كم³ م م² م³ سم سم² سم³ مم مم² مم³ كم غرام جرام جم كغ ملغ كوب اكواب"
)
_CURRENCY = (
    r"\$ £ € ¥ ฿ US\$ C\$ A\$ ₽ ﷼ ₴ ₠ ₡ ₢ ₣ ₤ ₥ ₦ ₧ ₨ ₩ ₪ ₫ € ₭ ₮ ₯ ₰ "
    r"₱ ₲ ₳ ₴ ₵ ₶ ₷ ₸ ₹ ₺ ₻ ₼ ₽ ₾ ₿"
)
_PUNCT = r"… …… , : ; \! \? ¿ ؟ ¡ \( \) \[ \] \{ \} < > _ # \* & 。 ？ ！ ， 、 ； ： ～ · । ، ۔ ؛ ٪"
# (U+2329/U+232A are written as escapes: editors may normalize them to U+3008/U+3009.)
_QUOTES = r'\' " ” “ ` ‘ ´ ’ ‚ , „ » « 「 」 『 』 （ ） 〔 〕 【 】 《 》 〈 〉 ' + "\u2329 \u232a  ⟦ ⟧"
_HYPHENS = "- – — -- --- —— ~"

LIST_PUNCT = _PUNCT.split(" ")
LIST_QUOTES = _QUOTES.split(" ")
LIST_CURRENCY = _CURRENCY.strip().split(" ")
LIST_ELLIPSES = [r"\.\.+", "…"]
LIST_ICONS = [f"[{ICONS}]"]
PUNCT = _PUNCT.replace(" ", "|")  # an alternation: "…|……|,|:|..."
UNITS = _UNITS.replace(" ", "|")
CURRENCY = _CURRENCY.strip().replace(" ", "|")
HYPHENS = _HYPHENS.replace(" ", "|")
CONCAT_QUOTES = _QUOTES.replace(" ", "")  # a character class body

# ---------------------------------------------------------------------------------------------
# Affix rules. The tokenizer compiles them as "^p1|^p2|..." (prefixes, first matching
# alternative wins), "s1$|s2$|..." (suffixes, searched: the earliest-starting match wins) and
# "i1|i2|..." (infixes, all non-overlapping matches). Empty items are dropped.
# ---------------------------------------------------------------------------------------------
PREFIXES = (
    ["§", "%", "=", "—", "–", r"\+(?![0-9])"]
    + LIST_PUNCT + LIST_ELLIPSES + LIST_QUOTES + LIST_CURRENCY + LIST_ICONS
)

SUFFIXES = LIST_PUNCT + LIST_ELLIPSES + LIST_QUOTES + LIST_ICONS + [
    "'s", "'S", "’s", "’S", "—", "–",
    r"(?<=[0-9])\+",  # 5+
    r"(?<=°[FfCcKk])\.",  # a period after a temperature unit
    rf"(?<=[0-9])(?:{CURRENCY})",  # 5$
    rf"(?<=[0-9])(?:{UNITS})",  # 10km
    # A period after a digit, lower-case letter, % ² - +, PUNCT or a quote. PUNCT is the
    # "|"-joined alternation and "(?:...)" sits inside the class, so "|", "(", "?", ":" and ")"
    # are members of this character class too: spaCy's quirk, kept.
    rf"(?<=[0-9{ALPHA_LOWER}%²\-\+{PUNCT}(?:{CONCAT_QUOTES})])\.",
    rf"(?<=[{ALPHA_UPPER}][{ALPHA_UPPER}])\.",  # a period after two capitals
]

# English infixes (spacy/lang/en/punctuation.py replaces the base list).
INFIXES = LIST_ELLIPSES + LIST_ICONS + [
    r"(?<=[0-9])[+\-\*^](?=[0-9-])",  # 3*4, 1-2
    rf"(?<=[{ALPHA_LOWER}{CONCAT_QUOTES}])\.(?=[{ALPHA_UPPER}{CONCAT_QUOTES}])",  # end.Start
    rf"(?<=[{ALPHA}]),(?=[{ALPHA}])",  # a,b
    rf"(?<=[{ALPHA}0-9])(?:{HYPHENS})(?=[{ALPHA}])",  # e-mail, 5-high
    rf"(?<=[{ALPHA}0-9])[:<>=/](?=[{ALPHA}])",  # and/or, a:b
]

# ---------------------------------------------------------------------------------------------
# URLs (dperini's pattern as modified by spaCy). Tried on what is left after prefixes and
# suffixes are split off, before infixes. The TLD must be lower case.
# ---------------------------------------------------------------------------------------------
URL_PATTERN = (
    r"^"
    r"(?:(?:[\w\+\-\.]{2,})://)?"  # optional scheme
    r"(?:\S+(?::\S*)?@)?"  # optional user[:password]@
    r"(?:"
    # IPv4, excluding private and local networks, network/broadcast and >= 224.0.0.0
    r"(?!(?:10|127)(?:\.\d{1,3}){3})"
    r"(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})"
    r"(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})"
    r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])"
    r"(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}"
    r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
    r"|"
    # host and domain names, then a lower-case TLD
    r"(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?[A-Za-z0-9\u00a1-\uffff]\.)+"
    r"(?:[" + ALPHA_LOWER + "]{2,63})"
    r")"
    r"(?::\d{2,5})?"  # port
    r"(?:[/?#]\S*)?"  # path
    r"$"
)

# ---------------------------------------------------------------------------------------------
# Exceptions: strings that are tokenized by a fixed rule (key -> token texts).
# ---------------------------------------------------------------------------------------------
EMOTICONS = r"""
:) :-) :)) :-)) :))) :-))) (: (-: =) (= :] :-] [: [-: [= =] :o) (o: :} :-} 8) 8-) (-8 ;) ;-) (; (-;
:( :-( :(( :-(( :((( :-((( ): )-: =( >:( :') :'-) :'( :'-( :/ :-/ =/ =| :| :-| ]= =[ :1 :P :-P :p
:-p :O :-O :o :-o :0 :-0 :() >:o :* :-* :3 :-3 =3 :> :-> :X :-X :x :-x :D :-D ;D ;-D =D xD XD xDD
XDD 8D 8-D ^_^ ^__^ ^___^ >.< >.> <.< ._. ;_; -_- -__- v.v V.V v_v V_V o_o o_O O_o O_O 0_o o_0
0_0 o.O O.o O.O o.o 0.0 o.0 0.o @_@ <3 <33 <333 </3 (^_^) (-_-) (._.) (>_<) (*_*) (¬_¬) ಠ_ಠ ಠ︵ಠ
(ಠ_ಠ) ¯\(ツ)/¯ (╯°□°）╯︵┻━┻ ><(((*>
""".split()


def _base_exceptions() -> dict[str, tuple[str, ...]]:
    """Language-independent exceptions (spacy/lang/tokenizer_exceptions.py)."""
    exc = {s: (s,) for s in [" ", "\t", "\\t", "\n", "\\n", "\u2014", "\u00a0"]}
    singles = ["'", '\\")', "<space>", "''", "C++"] + [c + "." for c in "abcdefghijklmnopqrstuvwxyzäöü"]
    exc.update({s: (s,) for s in singles + EMOTICONS})
    for u in "cfkCFK":
        exc[f"°{u}."] = ("°", u, ".")
    return exc


_EXCLUDE = ["Ill", "ill", "Its", "its", "Hell", "hell", "Shell", "shell", "Shed", "shed",
            "were", "Were", "Well", "well", "Whore", "whore"]


def _english_exceptions() -> dict[str, tuple[str, ...]]:
    """English contractions, abbreviations and times (spacy/lang/en/tokenizer_exceptions.py)."""
    exc: dict[str, tuple[str, ...]] = {}

    def both_cases(word):
        return [word, word.title()]

    for orth in both_cases("i"):
        exc[orth + "'m"], exc[orth + "m"] = (orth, "'m"), (orth, "m")
        exc[orth + "'ma"], exc[orth + "ma"] = (orth, "'m", "a"), (orth, "m", "a")
    families = [  # (words, endings): word + ending -> (word, *ending pieces)
        (["i", "you", "he", "she", "it", "we", "they"], ["'ll", "ll", "'ll've", "llve", "'d", "d", "'d've", "dve"]),
        (["i", "you", "we", "they"], ["'ve", "ve"]),
        (["you", "we", "they"], ["'re", "re"]),
        (["he", "she", "it"], ["'s", "s"]),
        # who/what/... take every ending; this/that ('re, 've) and these/those ('s) not all
        (["who", "what", "when", "where", "why", "how", "there", "that", "this"], ["'s", "s"]),
        (["who", "what", "when", "where", "why", "how", "there", "that", "this", "these", "those"],
         ["'ll", "ll", "'ll've", "llve", "'d", "d", "'d've", "dve"]),
        (["who", "what", "when", "where", "why", "how", "there", "these", "those"], ["'re", "re", "'ve", "ve"]),
    ]
    pieces = {"'ll've": ("'ll", "'ve"), "llve": ("ll", "ve"), "'d've": ("'d", "'ve"), "dve": ("d", "ve")}
    for words, endings in families:
        for word in words:
            for orth in both_cases(word):
                for end in endings:
                    exc[orth + end] = (orth, *pieces.get(end, (end,)))
    # verb + n't: don't -> do n't, can't -> ca n't, won't -> wo n't
    for verb in ["ca", "could", "do", "does", "did", "had", "may", "might", "must", "need", "ought",
                 "sha", "should", "wo", "would"]:
        for orth in both_cases(verb):
            exc[orth + "n't"], exc[orth + "nt"] = (orth, "n't"), (orth, "nt")
            exc[orth + "n't've"], exc[orth + "ntve"] = (orth, "n't", "'ve"), (orth, "nt", "ve")
    for verb in ["could", "might", "must", "should", "would"]:
        for orth in both_cases(verb):
            exc[orth + "'ve"], exc[orth + "ve"] = (orth, "'ve"), (orth, "ve")
    for verb in ["ai", "are", "is", "was", "were", "have", "has", "dare"]:
        for orth in both_cases(verb):
            exc[orth + "n't"], exc[orth + "nt"] = (orth, "n't"), (orth, "nt")
    # single tokens: doin, doin' ...; em, 'em ...
    for word in ["doin", "goin", "nothin", "nuthin", "ol", "somethin"]:
        for orth in both_cases(word):
            exc[orth], exc[orth + "'"] = (orth,), (orth + "'",)
    for word in ["em", "ll", "nuff"]:
        exc[word], exc["'" + word] = (word,), ("'" + word,)
    for hour in range(1, 13):  # 5pm -> 5 pm, 5a.m. -> 5 a.m.
        for period in ["a.m.", "am", "p.m.", "pm"]:
            exc[f"{hour}{period}"] = (str(hour), period)
    exc.update({
        "y'all": ("y'", "all"), "yall": ("y", "all"),
        "how'd'y": ("how", "'d", "'y"), "How'd'y": ("How", "'d", "'y"),
        "not've": ("not", "'ve"), "notve": ("not", "ve"), "Not've": ("Not", "'ve"), "Notve": ("Not", "ve"),
        "cannot": ("can", "not"), "Cannot": ("Can", "not"),
        "gonna": ("gon", "na"), "Gonna": ("Gon", "na"),
        "gotta": ("got", "ta"), "Gotta": ("Got", "ta"),
        "let's": ("let", "'s"), "Let's": ("Let", "'s"),
        "c'mon": ("c'm", "on"), "C'mon": ("C'm", "on"),
    })
    singles = """
        'S 's ‘S ‘s and/or w/o 're 'Cause 'cause 'cos 'Cos 'coz 'Coz 'cuz 'Cuz 'bout ma'am Ma'am
        o'clock O'clock lovin' Lovin' lovin Lovin havin' Havin' havin Havin doin' Doin' doin Doin
        goin' Goin' goin Goin
        Mt. Ak. Ala. Apr. Ariz. Ark. Aug. Calif. Colo. Conn. Dec. Del. Feb. Fla. Ga. Ia. Id. Ill.
        Ind. Jan. Jul. Jun. Kan. Kans. Ky. La. Mar. Mass. Mich. Minn. Miss. N.C. N.D. N.H. N.J. N.M.
        N.Y. Neb. Nebr. Nev. Nov. Oct. Okla. Ore. Pa. S.C. Sep. Sept. Tenn. Va. Wash. Wis.
        'd a.m. Adm. Bros. co. Co. Corp. D.C. Dr. e.g. E.g. E.G. Gen. Gov. i.e. I.e. I.E. Inc. Jr.
        Ltd. Md. Messrs. Mo. Mont. Mr. Mrs. Ms. p.m. Ph.D. Prof. Rep. Rev. Sen. St. vs. v.s.
    """.split()
    exc.update({s: (s,) for s in singles})
    for key in _EXCLUDE:  # ambiguous: "ill" is not "i 'll", "its" is not "it s"
        exc.pop(key, None)
    return exc


def build_exceptions() -> dict[str, tuple[str, ...]]:
    """Base + English exceptions, plus a copy of every key containing ' with the typographic ’."""
    exc = {**_base_exceptions(), **_english_exceptions()}
    for key, pieces in list(exc.items()):
        if "'" in key:
            exc[key.replace("'", "’")] = tuple(p.replace("'", "’") for p in pieces)
    for key, pieces in exc.items():
        assert "".join(pieces) == key, key
    return exc


EXCEPTIONS = build_exceptions()
