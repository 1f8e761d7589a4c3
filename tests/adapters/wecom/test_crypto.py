"""The three published WeCom crypto vector sets (protocols/WECOM_AND_EXPORTS.md §2.2)."""

from __future__ import annotations

import pytest

from qunyun.adapters.platforms.wecom.crypto import (
    DECODE_BASE64,
    ILLEGAL_AES_KEY,
    PARSE_XML,
    VALIDATE_RECEIVE_ID,
    VALIDATE_SIGNATURE,
    CallbackCryptoError,
    WecomCrypto,
    parse_xml,
    signature,
)

A = WecomCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
A_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911"
    "L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLx"
    "AUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9"
    "nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/u"
    "h9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
A_MESSAGE = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>")

B = WecomCrypto("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
                "ww1436e0e65a779aee")
B_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzT"
    "tRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5j"
    "aU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX"
    "3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+")

C = WecomCrypto("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")
C_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXz"
    "F6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gY"
    "Nx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2S"
    "jHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En74"
    "9zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=")
C_REPLY = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
           "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
           "<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
           "<CreateTime>1411525903</CreateTime>\n</xml>")
C_EXPECTED_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8Gq"
    "xlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qv"
    "SUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQy"
    "PR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3")


def _envelope(to: str, encrypt: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")


def test_vector_a_url_verification_and_event() -> None:
    echo = ("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8"
            "TgAE7OaBO+FZXvnaqQ==")
    assert A.verify_url("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
                        echo) == "1616140317555161061"
    msg = A.decrypt_callback(_envelope("wx5823bf96d3bd56c7", A_ENCRYPT),
                             "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149")
    assert msg == A_MESSAGE


def test_vector_b_utf8_body() -> None:
    echo = ("fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjn"
            "oVzEtpbhnFyq6SVHyA==")
    assert B.verify_url("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683",
                        echo) == "1288432023552776189"
    msg = B.decrypt_callback(_envelope("ww1436e0e65a779aee", B_ENCRYPT),
                             "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914")
    assert parse_xml(msg)["Content"] == "你好"
    assert parse_xml(msg)["FromUserName"] == "ChenJiaShun"


def test_vector_c_decrypt_and_deterministic_encrypt() -> None:
    echo = ("4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Y"
            "h9Bv41n7hOchLF6p+Q==")
    assert C.verify_url("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425",
                        echo) == "5927782489442352469"
    msg = parse_xml(C.decrypt_callback(_envelope("wx49f0ab532d5d035a", C_ENCRYPT),
                                       "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903",
                                       "461056294"))
    assert (msg["Content"], msg["FromUserName"], msg["MsgId"]) == (
        "test", "messense", "4363689963896700987")
    reply = C.encrypt_reply(C_REPLY, timestamp="1411525903", nonce="461056294",
                            random16=b"1234567890123456")
    fields = parse_xml(reply)
    assert fields["Encrypt"] == C_EXPECTED_ENCRYPT
    assert fields["MsgSignature"] == "407518b7649e86ef23978113f92d27afa9296533"
    assert C.decrypt(fields["Encrypt"]) == C_REPLY


def test_round_trip_and_signature_of_own_callbacks() -> None:
    envelope, sig = B.encrypt_callback("<xml><Event>x</Event></xml>", timestamp="1", nonce="n")
    assert B.decrypt_callback(envelope, sig, "1", "n") == "<xml><Event>x</Event></xml>"
    assert sig == signature(B.token, "1", "n", parse_xml(envelope)["Encrypt"])


@pytest.mark.parametrize(("call", "code"), [
    # a changed nonce breaks the signature
    (lambda: A.verify_url("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014781",
                          "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8"
                          "TgAE7OaBO+FZXvnaqQ=="), VALIDATE_SIGNATURE),
    # right signature, another corp's receive id (vector A decrypted with a different corp)
    (lambda: WecomCrypto(A.token, A.aes_key, "wwOTHER").decrypt(A_ENCRYPT), VALIDATE_RECEIVE_ID),
    (lambda: A.decrypt("not base64!!"), DECODE_BASE64),
    (lambda: WecomCrypto("t", "short", "c"), ILLEGAL_AES_KEY),
    (lambda: A.decrypt_callback("<xml><Encrypt>", "s", "1", "n"), PARSE_XML),
])
def test_refusals_carry_the_official_codes(call, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CallbackCryptoError) as info:
        call()
    assert info.value.code == code


def test_entity_expansion_is_refused() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>')
    with pytest.raises(CallbackCryptoError) as info:
        parse_xml(bomb)
    assert info.value.code == PARSE_XML
