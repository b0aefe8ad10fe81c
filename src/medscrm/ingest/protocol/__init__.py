"""Pure wire-protocol code for event collection: no database, no web framework.

* :mod:`.segment` — Segment-spec messages (track/identify/page/screen/group/alias, batch):
  body decoding (gzip, size limits), write keys, validation, clock-skew correction.
* :mod:`.tencent_crypto` — WeCom / WeChat callback crypto (``WXBizMsgCrypt``) and signatures.
* :mod:`.wecom` — decrypted WeCom callback XML → :class:`~.wecom.CallbackEvent`.
* :mod:`.wechat` — WeChat official account push XML → :class:`~.wecom.CallbackEvent`.

Import the submodule you need; this package imports nothing on its own.
"""
