package daemon

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/berthdev/berth/internal/accounts"
	"github.com/berthdev/berth/internal/agentapi"
)

// adminHandler serves the operator's calls that belong to no service
// (accounts), authenticated by the join token as agents of berth's own
// capacity are.
func adminHandler(accts *accounts.Accounts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !accts.AgentTokenValid(r.Context(), token) {
			http.Error(w, `{"error":"the operator's calls need the join token"}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Path != agentapi.PathAccounts || r.Method != http.MethodPost {
			http.Error(w, `{"error":"no such admin call"}`, http.StatusNotFound)
			return
		}
		k, err := accts.CreateAccount(r.Context())
		if err != nil {
			http.Error(w, `{"error":"create account"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(agentapi.Account{AccountID: k.AccountID, AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey})
	})
}
