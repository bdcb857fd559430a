package accounts

import (
	"context"
	"testing"
)

func TestCreateAccount(t *testing.T) {
	a, _ := newTestAccounts()
	ctx := context.Background()
	seen := map[string]bool{}
	for range 3 {
		k, err := a.CreateAccount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.AccountID) != 12 || k.AccountID == DevAccountID || seen[k.AccountID] {
			t.Fatalf("account id %q (seen %v)", k.AccountID, seen)
		}
		seen[k.AccountID] = true
		secret, account, err := a.Lookup(ctx, k.AccessKeyID)
		if err != nil || secret != k.SecretAccessKey || account != k.AccountID {
			t.Fatalf("lookup of the new key: %q %q %v", secret, account, err)
		}
	}
}
