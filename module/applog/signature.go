package applog

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// verify checks b's signature against every secret its records need.
// needed holds the distinct rules that have secrets. On success the
// signature is remembered, so that the same signed request is refused
// if it comes again within the replay window.
func (a *App) verify(b *intake.Batch, needed []*rules, now time.Time) error {
	if len(needed) == 0 {
		return nil
	}
	sig := b.Signature
	if sig == nil {
		return intake.Errorf(http.StatusUnauthorized, "facility %s requires a signed request (%s header)", needed[0].name, intake.SignatureHeader)
	}
	window := time.Duration(a.ReplayWindow)
	age := now.Sub(time.Unix(sig.Timestamp, 0))
	if age > window || age < -window {
		return intake.Errorf(http.StatusForbidden, "signature timestamp is %s away from server time, outside the %s replay window", age.Round(time.Second).Abs(), window)
	}
	var used [][]byte
	for _, r := range needed {
		mac := matchingMAC(r.secrets, sig)
		if mac == nil {
			return intake.Errorf(http.StatusForbidden, "bad signature for facility %s", r.name)
		}
		used = append(used, mac)
	}
	if err := a.replay.remember(used, sig.Timestamp, time.Unix(sig.Timestamp, 0).Add(window), now); err != nil {
		switch {
		case errors.Is(err, errReplayed):
			return intake.Errorf(http.StatusConflict, "replayed request: this signature was already used")
		case errors.Is(err, errUnproven):
			return intake.Errorf(http.StatusUnauthorized, "signature made before the server restarted after a crash, when used signatures may have been lost: sign the request again")
		case errors.Is(err, errReplayFull):
			return intake.Errorf(http.StatusServiceUnavailable, "too many signatures in the replay window: try again later")
		}
		a.logger.Error("recording a used signature failed; refusing signed requests", zap.Error(err))
		return intake.Errorf(http.StatusServiceUnavailable, "cannot record the signature's use: try again later")
	}
	return nil
}

// matchingMAC returns the MAC in sig that one of secrets produced.
func matchingMAC(secrets [][]byte, sig *intake.Signature) []byte {
	for _, secret := range secrets {
		h := hmac.New(sha256.New, secret)
		h.Write(sig.Payload)
		want := h.Sum(nil)
		for _, mac := range sig.MACs {
			if hmac.Equal(mac, want) {
				return mac
			}
		}
	}
	return nil
}
