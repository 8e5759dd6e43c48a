"""schemathesis hooks for scripts/api-fuzz.

The document's `Msisdn` schema carries libphonenumber's rule as one exact regular expression
(over 100 KB) and names its format `msisdn`. schemathesis would rebuild a generator from that
pattern for every test case it draws, which takes seconds each; this hook builds one generator
from the same pattern, once, and registers it for the format. Values are still checked against
the pattern (and every other keyword) by schemathesis itself.
"""

import schemathesis
from hypothesis import strategies as st


@schemathesis.hook
def before_load_schema(context, raw_schema):
    msisdn = raw_schema["components"]["schemas"]["Msisdn"]
    numbers = st.from_regex(msisdn["pattern"], fullmatch=True)
    # Build it now (some seconds), not inside the first test case's time budget.
    numbers.validate()
    schemathesis.openapi.format("msisdn", numbers)
