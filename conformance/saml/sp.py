"""A SAML service provider built on pysaml2, driven by the conformance suite.

Sesame's tests call it as a command: it makes AuthnRequests and checks Responses with pysaml2's
own default validation (signature, audience, recipient, InResponseTo, validity window). Nothing
here relaxes a check; the configuration only names the SP's endpoints, its keys, the IdP's
metadata, and SHA-256 for what it signs (pysaml2 still defaults to SHA-1, which Sesame refuses).

    SP_DIR=dir SP_BASE=https://sp.example sp.py metadata
    SP_DIR=dir SP_BASE=... sp.py redirect RELAY_STATE [CLASS COMPARISON]  -> {"id", "url"}
                                  (with a RequestedAuthnContext for CLASS when given)
    SP_DIR=dir SP_BASE=... sp.py post RELAY_STATE            -> {"id", "action", "SAMLRequest"}
    SP_DIR=dir SP_BASE=... sp.py accept REQUEST_ID < SAMLResponse (base64)
                                                              -> {"name_id", "attributes", ...}
    SP_DIR=dir SP_BASE=... sp.py accept-unsolicited < SAMLResponse
                                  (an IdP-initiated Response; the SP then allows unsolicited ones)
    SP_DIR=dir SP_BASE=... sp.py logout NAME_ID SESSION_INDEX RELAY_STATE  -> {"id", "url"}
    SP_DIR=dir SP_BASE=... sp.py logout-response < SAMLResponse (Redirect binding, as received)
                                                              -> {"status", "in_response_to"}
"""

import json
import os
import sys

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.attribute_converter import ac_factory
from saml2.httpbase import HTTPBase
from saml2.mdstore import MetaDataExtern
from saml2.metadata import entity_descriptor
from saml2.sigver import security_context
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256


def config(unsolicited=False):
    d = os.environ["SP_DIR"]
    base = os.environ["SP_BASE"]
    conf = {
        "entityid": base + "/metadata",
        "key_file": os.path.join(d, "key.pem"),
        "cert_file": os.path.join(d, "cert.pem"),
        "encryption_keypairs": [
            {"key_file": os.path.join(d, "key.pem"), "cert_file": os.path.join(d, "cert.pem")}
        ],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(base + "/acs", BINDING_HTTP_POST)],
                    "single_logout_service": [(base + "/slo", BINDING_HTTP_REDIRECT)],
                },
                "authn_requests_signed": True,
                "allow_unsolicited": unsolicited,
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            }
        },
    }
    idp = os.path.join(d, "idp.xml")
    if os.path.exists(idp):
        conf["metadata"] = {"local": [idp]}
    c = SPConfig()
    c.load(conf)
    return c


def idp_entity_id(client):
    return next(iter(client.metadata.identity_providers()))


def main():
    cmd = sys.argv[1]
    conf = config(unsolicited=cmd == "accept-unsolicited")
    if cmd == "metadata":
        print(str(entity_descriptor(conf)))
        return
    if cmd == "check-metadata":
        # The IdP's metadata fetched from its URL and, being signed, verified against the
        # certificate given (pysaml2's remote metadata, unmodified).
        md = MetaDataExtern(
            ac_factory(), sys.argv[2], security_context(conf), cert=sys.argv[3], http=HTTPBase()
        )
        md.load()
        if not md.signed():
            sys.exit("the metadata is not signed")
        print(json.dumps(sorted(e for e, d in md.items() if "idpsso_descriptor" in d)))
        return
    client = Saml2Client(config=conf)
    if cmd in ("redirect", "post"):
        binding = BINDING_HTTP_REDIRECT if cmd == "redirect" else BINDING_HTTP_POST
        # Optional: an authentication context class and its comparison to request.
        context = {}
        if len(sys.argv) > 4:
            context = {"authn_context_class_ref": [sys.argv[3]], "comparison": sys.argv[4]}
        req_id, info = client.prepare_for_authenticate(
            entityid=idp_entity_id(client),
            relay_state=sys.argv[2],
            binding=binding,
            sigalg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
            requested_authn_context=context,
        )
        if cmd == "redirect":
            url = dict(info["headers"])["Location"]
            print(json.dumps({"id": req_id, "url": url}))
        else:
            print(json.dumps({"id": req_id, "action": info["url"], "SAMLRequest": info["data"]["SAMLRequest"] if isinstance(info.get("data"), dict) else form_value(info, "SAMLRequest")}))
        return
    if cmd in ("accept", "accept-unsolicited"):
        outstanding = {sys.argv[2]: "/"} if cmd == "accept" else {}
        encoded = sys.stdin.read().strip()
        response = client.parse_authn_request_response(
            encoded, BINDING_HTTP_POST, outstanding=outstanding
        )
        if response is None:
            raise SystemExit("pysaml2 returned no response")
        name_id = response.name_id
        authn = response.assertion.authn_statement[0]
        print(
            json.dumps(
                {
                    "name_id": name_id.text,
                    "name_id_format": name_id.format,
                    "attributes": response.get_identity(),
                    "session_index": authn.session_index,
                    "authn_class": authn.authn_context.authn_context_class_ref.text,
                    "issuer": response.response.issuer.text,
                    "in_response_to": response.in_response_to,
                }
            )
        )
        return
    if cmd == "logout":
        idp = idp_entity_id(client)
        destination = client.metadata.single_logout_service(
            idp, BINDING_HTTP_REDIRECT, "idpsso"
        )[0]["location"]
        name_id = NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=sys.argv[2])
        req_id, req = client.create_logout_request(
            destination, idp, name_id=name_id, session_indexes=[sys.argv[3]], sign=False
        )
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(req),
            destination,
            relay_state=sys.argv[4],
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        print(json.dumps({"id": req_id, "url": dict(info["headers"])["Location"]}))
        return
    if cmd == "logout-response":
        encoded = sys.stdin.read().strip()
        response = client.parse_logout_request_response(encoded, BINDING_HTTP_REDIRECT)
        if response is None:
            raise SystemExit("pysaml2 returned no logout response")
        print(
            json.dumps(
                {
                    "status": response.response.status.status_code.value,
                    "in_response_to": response.in_response_to,
                }
            )
        )
        return
    raise SystemExit("unknown command " + cmd)


def form_value(info, name):
    """The value of the hidden input `name` in pysaml2's auto-posting form."""
    html = info["data"]
    marker = 'name="%s" value="' % name
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


if __name__ == "__main__":
    main()
