"""Local stand-ins for providers, run as real processes: an SMTP server (aiosmtpd) and an HTTP
server speaking the Alibaba Cloud / Tencent Cloud SMS and WeCom / WeChat APIs (signatures and the
access_token flow checked as the real services do). Each records what it accepted as JSONL."""
