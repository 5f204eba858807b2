"""Text generation (learn.predict) and decoding tokens back to readable text; the plain loop (fast=False) and
generate_fast.py's one-token step and sampler (fast=True) agree."""
import pytest
import torch

from awdlstm.generate import _sample_multinomial, decode_spec_tokens, decode_text, generate, generate_tokens
from awdlstm.generate_fast import OneTokenStep, fast_step, sample_inverse_cdf
from awdlstm.model import LanguageModel, lm_config

ITOS = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj",
        "the", "movie", "was", "good", "bad", ".", ",", "i", "it", "liked", "and"]


def simple_tokenize(text):
    return ["xxbos"] + text.lower().split()


@pytest.fixture
def lm():
    torch.manual_seed(0)
    return LanguageModel(len(ITOS), lm_config(emb_sz=8, n_hid=12, n_layers=2)).eval()


def test_decode_spec_tokens():
    assert decode_spec_tokens(["xxmaj", "the", "xxup", "nasa", "xxrep", "3", "!", "xxwrep", "2", "go", "end"]) == [
        "The", "NASA", "!!!", "go", "go", "end"]  # fastai would repeat "end" too (its rule is never reset)
    assert decode_spec_tokens(["xxrep", "oops", "x"]) == ["oops", "x"]


@pytest.mark.parametrize("tokens, text", [
    (["xxbos", "xxmaj", "i", "did", "n't", "like", "it", ",", "(", "really", ")", "."], "I didn't like it, (really)."),
    (["xxbos", "he", "said", '"', "wow", '"', "and", "left", "!"], 'He said "wow" and left!'.replace("He", "he")),
    (["xxbos", "a", "well", "-", "known", "film", "-", "-", "xxup", "ok", "?", "?"], "a well-known film - - OK??"),
    (["xxbos", "rated", "7", "/", "10", "…", "it", "'s", "$", "5", "xxpad"], "rated 7/10… it's $5"),
    (["xxbos", "line", "\n\n", "xxmaj", "next", "xxrep", "4", "!"], "line\n\nNext!!!!"),
])
def test_decode_text(tokens, text):
    assert decode_text(tokens) == text


def test_generate_is_repeatable_with_a_seed(lm):
    a = generate(lm, ITOS, "The movie", 12, seed=3, tokenize=simple_tokenize)
    b = generate(lm, ITOS, "The movie", 12, seed=3, tokenize=simple_tokenize)
    c = generate(lm, ITOS, "The movie", 12, seed=4, tokenize=simple_tokenize)
    assert a == b != c and a.startswith("the movie")
    assert lm.encoder.hidden is None and not lm.training  # state reset, mode restored


def test_a_backward_model_writes_what_comes_before_the_prompt(lm):
    """The prompt is read last token first (no xxbos: in a reversed document it is the end); the text comes
    back in reading order, ending with the prompt: the words the model read it greedily continue with, reversed."""
    text = generate(lm, ITOS, "I liked the movie", 6, temperature=0, tokenize=simple_tokenize, backwards=True)
    assert text.endswith("i liked the movie") and len(text.split()) > 4
    new = generate_tokens(lm, ITOS, ["movie", "the", "liked", "i"], 6, temperature=0)
    assert text == decode_text(new[::-1] + ["i", "liked", "the", "movie"])


def _full_reread_greedy(model, ids, n):
    """fastai's way: re-read the whole text from a zero state for each new word."""
    ids = list(ids)
    for _ in range(n):
        model.reset()
        with torch.no_grad():
            probs = model(torch.tensor([ids]))[0][0, -1].softmax(-1)
        probs[0] = 0.0
        ids.append(int(probs.argmax()))
    return ids


def test_carried_state_equals_rereading_the_whole_text(lm):
    prompt = ["xxbos", "the", "movie", "was"]
    got = generate_tokens(lm, ITOS, prompt, 15, temperature=0)
    want = _full_reread_greedy(lm, [ITOS.index(t) for t in prompt], 15)
    assert got == [ITOS[i] for i in want[len(prompt):]]
    assert generate_tokens(lm, ITOS, prompt, 15, top_k=1, seed=0) == got  # top_k=1 is greedy too


def test_no_unk_never_samples_xxunk(lm):
    with torch.no_grad():
        lm.decoder.decoder.bias[0] = 6.0  # make xxunk very likely
    prompt = ["xxbos", "the"]
    assert "xxunk" in generate_tokens(lm, ITOS, prompt, 30, no_unk=False, seed=0)
    assert "xxunk" not in generate_tokens(lm, ITOS, prompt, 200, no_unk=True, seed=0)


def test_top_p_and_temperature_restrict_choices(lm):
    with torch.no_grad():
        lm.decoder.decoder.bias[:] = 0.0
        lm.decoder.decoder.bias[10] = 4.0  # "movie" dominates
    prompt = ["xxbos", "the"]
    assert set(generate_tokens(lm, ITOS, prompt, 40, top_p=0.5, seed=0)) == {"movie"}
    cold = generate_tokens(lm, ITOS, prompt, 60, temperature=0.1, seed=0)
    hot = generate_tokens(lm, ITOS, prompt, 60, temperature=3.0, seed=0)
    assert cold.count("movie") > hot.count("movie")


def test_vocab_object_and_errors(lm):
    class Vocab:
        itos = ITOS
        stoi = {w: i for i, w in enumerate(ITOS)}
    out = generate(lm, Vocab(), "I liked it", 3, seed=0, tokenize=simple_tokenize)
    assert out.startswith("i liked it")
    with pytest.raises(ValueError, match="n_words"):
        generate_tokens(lm, ITOS, ["xxbos"], -1)
    with pytest.raises(ValueError, match="vocab has 5"):
        generate_tokens(lm, ITOS[:5], ["xxbos"], 2)
    with pytest.raises(ValueError, match="top_p"):
        generate_tokens(lm, ITOS, ["xxbos"], 2, top_p=1.5)


@pytest.mark.parametrize("vocab_sz", [20, 21])  # even: the products split in two halves; odd: one block
def test_one_token_step_equals_the_model(vocab_sz):
    torch.manual_seed(1)
    model = LanguageModel(vocab_sz, lm_config(emb_sz=8, n_hid=13, n_layers=3)).eval()
    assert OneTokenStep.supports(model)
    step = OneTokenStep(model)
    ids = [2, 9, 10, 11, 12, 14, 16, 3]
    with torch.no_grad():
        model.reset()
        model(torch.tensor([ids[:2]]))
        state = [(h.reshape(-1), c.reshape(-1)) for h, c in model.encoder.hidden]
        for t in ids[2:]:
            want = model(torch.tensor([[t]]))[0][0, -1]
            got = step(t, state)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
            for (h, c), (h2, c2) in zip(state, model.encoder.hidden, strict=True):
                torch.testing.assert_close(h, h2.reshape(-1), rtol=1e-5, atol=1e-6)
                torch.testing.assert_close(c, c2.reshape(-1), rtol=1e-5, atol=1e-6)


def test_int8_copy_generates_through_the_model(lm):
    from awdlstm.quantize import quantize_int8

    q = quantize_int8(lm)
    assert not OneTokenStep.supports(q)  # int8 modules: each word goes through model(x)
    prompt = ["xxbos", "the", "movie", "was"]
    assert len(generate_tokens(q, ITOS, prompt, 10, temperature=0)) == 10


@pytest.mark.parametrize("sample", [sample_inverse_cdf, _sample_multinomial], ids=["inverse_cdf", "multinomial"])
def test_sample_follows_the_probabilities(sample):
    gen = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.0, 2.0, 0.0, 1.0, 1.0, 0.0])  # unnormalised, zeros never drawn
    counts = torch.bincount(torch.tensor([sample(probs, gen) for _ in range(20000)]), minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    torch.testing.assert_close(counts.double() / 20000, probs.double() / 4, atol=0.015, rtol=0)
    assert sample(torch.tensor([0.0, 0.0, 1e-30]), gen) == 2


@pytest.mark.parametrize("prompt", [["xxbos"], ["xxbos", "the", "movie", "was"], ["xxbos", "i", "liked", "it", "."]])
def test_fast_and_plain_loops_give_the_same_greedy_text(prompt):
    torch.manual_seed(2)
    lm = LanguageModel(len(ITOS), lm_config(emb_sz=8, n_hid=12, n_layers=2)).eval()
    with torch.no_grad():
        for p in lm.parameters():
            p.mul_(3.0)  # larger weights: a greedy text that changes words (the default init repeats one)
    assert OneTokenStep.supports(lm)
    plain = generate_tokens(lm, ITOS, prompt, 25, temperature=0, fast=False)
    assert generate_tokens(lm, ITOS, prompt, 25, temperature=0, fast=True) == plain
    assert generate_tokens(lm, ITOS, prompt, 25, top_k=1, seed=0, fast=True) == plain  # sampled, top_k=1: greedy
    assert len(set(plain)) >= 3  # a text, not one word repeated


def test_fast_and_plain_loops_sample_the_same_distribution(lm):
    """The first word after a prompt, drawn many times each way (temperature 0.75, top_k 6): both follow the
    model's own probabilities, so both agree with each other."""
    prompt = ["xxbos", "the", "movie"]
    with torch.no_grad():
        lm.reset()
        probs = lm(torch.tensor([[ITOS.index(t) for t in prompt]]))[0][0, -1].softmax(-1)
        lm.reset()
    probs[0] = 0.0
    kth = probs.topk(6).values[-1]
    want = probs.masked_fill(probs < kth, 0.0).pow(1 / 0.75)
    want = want / want.sum()
    n = 1500
    freqs = {}
    for fast in (True, False):
        words = [generate_tokens(lm, ITOS, prompt, 1, temperature=0.75, top_k=6, seed=s, fast=fast)[0] for s in range(n)]
        freqs[fast] = torch.bincount(torch.tensor([ITOS.index(w) for w in words]), minlength=len(ITOS)).double() / n
        torch.testing.assert_close(freqs[fast], want.double(), atol=0.04, rtol=0)
    assert (freqs[True] > 0).sum() == (freqs[False] > 0).sum() == 6
    torch.testing.assert_close(freqs[True], freqs[False], atol=0.05, rtol=0)


def test_fast_and_plain_loops_give_the_same_logits(lm):
    """Each step of the fast loop (OneTokenStep on the carried state) gives the plain loop's logits (model(x))."""
    ids = [2, 9, 10, 11, 12, 14]
    with torch.no_grad():
        lm.reset()
        lm(torch.tensor([ids[:2]]))
        step = fast_step(lm)
        for t in ids[2:]:
            want = lm(torch.tensor([[t]]))[0][0, -1]
            torch.testing.assert_close(step(t), want, rtol=1e-5, atol=1e-6)
        lm.reset()
    assert fast_step(lm) is None  # no state to continue from
