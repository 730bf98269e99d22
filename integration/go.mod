module github.com/caddy-applog/caddy-applog/integration

go 1.26.8

require (
	github.com/caddy-applog/caddy-applog v0.0.0-00010101000000-000000000000
	github.com/chromedp/cdproto v0.159.0
	github.com/chromedp/chromedp v0.23.0
	github.com/klauspost/compress v1.20.1
	github.com/pires/go-proxyproto v0.15.0
	golang.org/x/crypto v0.57.0
)

require github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect

replace github.com/caddy-applog/caddy-applog => ../
