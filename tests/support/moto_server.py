"""moto_server with one correction, for the Rust SDK.

moto 5.1.22 wraps Route53 record values in CDATA sections
(`<Value><![CDATA[...]]></Value>`). Real Route53 sends escaped text, and the
Rust SDK's XML decoder drops CDATA, so every record value would read as
empty. Rendering the value escaped, as AWS does, is the only change;
everything else is moto as installed. Arguments are moto_server's.
"""

import sys

from moto.route53 import responses

responses.LIST_RRSET_RESPONSE = responses.LIST_RRSET_RESPONSE.replace(
    "<![CDATA[{{ resource }}]]>", "{{ resource|e }}"
)

from moto.server import main  # noqa: E402

sys.exit(main())
