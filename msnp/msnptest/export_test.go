package msnptest

// ChallengeAnswer exposes the server's challenge arithmetic to the tests.
var ChallengeAnswer = challengeAnswer
