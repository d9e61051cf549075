"""Issue 8 on the page: the Training recipe group (framework first, every field editable, which values the
framework set), host memory beside the GPU figure and in the chart, the 4-bit MoE experts note, what a
chunked loss saves, and the recipe export panel."""

import html
import re

import pytest
import yaml

from calculator.models import SavedConfiguration

HX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


def text(response):
    return response.content.decode()


def field_value(body, name):
    match = re.search(rf'id="{name}" name="{name}" value="([^"]*)"', body)
    return match[1] if match else None


def checked(body, name):
    return bool(re.search(rf'id="{name}" name="{name}" value="true" checked', body))


def selected(body, name):
    select = body.split(f'<select id="{name}"')[1].split("</select>")[0]
    return re.search(r'<option value="([^"]*)" selected', select)[1]


def test_the_recipe_group_comes_with_the_framework_first(client):
    body = text(client.get("/"))
    group = body.split('id="g-recipe"')[1].split("</fieldset>")[0]
    assert "Training recipe" in group
    fields = re.findall(r'<(?:select|input type="text"|input type="checkbox") id="(\w+)"', group)
    assert fields[0] == "framework"
    assert {"loss", "loss_chunks", "parallelism", "num_gpus", "host_ram_gib", "quantize_moe_experts"} <= set(fields)
    assert body.index('id="g-recipe"') < body.index('id="g-training"')


def test_a_framework_fills_the_form_and_the_page_says_which_values(client):
    body = text(client.get("/?framework=trl"))
    assert selected(body, "framework") == "trl"
    assert checked(body, "gradient_checkpointing")
    assert field_value(body, "seq_len") == "1024"
    assert field_value(body, "batch_size") == "8"
    assert selected(body, "loss") == "trl_chunked_nll"
    note = body.split('data-testid="framework-note"')[1].split("</div>")[0]
    assert "TRL SFTTrainer sets" in note
    assert "trl 1.16.0" in note
    assert body.count("· TRL default") >= 4  # the fields it filled are marked
    assert "TRL SFTTrainer" in body.split('id="results"')[1]  # the results say which recipe they are for


def test_a_field_the_user_sets_wins_and_the_url_holds_only_that(client):
    response = client.get("/?framework=trl&seq_len=4096&src=preset%3Allama-3.1-8b&fw=trl&batch_size=8", **HX)
    assert response["HX-Push-Url"] == "/?preset=llama-3.1-8b&framework=trl&seq_len=4096"
    body = text(client.get("/?preset=llama-3.1-8b&framework=trl&seq_len=4096"))
    assert field_value(body, "seq_len") == "4096"
    note = body.split('data-testid="framework-note"')[1].split("</div>")[0]
    assert "where you have not" in note
    assert "Sequence length" not in note


def test_picking_another_framework_redraws_the_fields_it_sets(client):
    # the form was drawn with TRL (fw=trl) and the user changed the sequence length only
    query = "/?preset=llama-3.1-8b&src=preset%3Allama-3.1-8b&fw=trl&framework=torchtune&seq_len=4096&batch_size=8"
    response = client.get(query + "&gradient_checkpointing=true&base_dtype=bf16&loss=trl_chunked_nll", **HX)
    body = text(response)
    assert response["HX-Push-Url"] == "/?preset=llama-3.1-8b&framework=torchtune&seq_len=4096"
    sections = re.findall(r'<fieldset class="group" id="g-(\w+)" hx-swap-oob="true">', body)
    assert sections == ["recipe", "training"]
    assert selected(body, "loss") == "chunked"  # TRL's value gave way to torchtune's
    assert field_value(body, "batch_size") == "4"
    assert field_value(body, "seq_len") == "4096"  # the user's stays


def test_host_memory_beside_the_gpu_figure_and_in_the_chart(client):
    body = text(client.get("/?gradient_checkpointing=true&activation_offloading=true&seq_len=16384&host_ram_gib=2"))
    assert 'data-testid="host-card"' in body
    assert 'data-testid="host-chart"' in body
    assert "of host (CPU) memory" in body
    assert "more than your 2.00 GiB" in body  # the RAM the user set
    assert 'data-testid="host-card"' not in text(client.get("/"))


def test_a_4bit_moe_says_why_its_experts_stay_16bit_and_offers_to_quantize_them(client):
    base = "/?preset=qwen3-30b-a3b&target_modules=q_proj&target_modules=v_proj&base_dtype=nf4"
    body = text(client.get(base))
    note = body.split('data-testid="moe-experts"')[1].split("</div>")[0]
    assert "3-D parameters" in note
    assert "bitsandbytes" in note
    link = html.unescape(re.search(r'href="([^"]+)">Quantize the experts', note)[1])
    assert "quantize_moe_experts=true" in link
    after = text(client.get(link))
    assert 'data-testid="moe-experts"' not in after
    assert checked(after, "quantize_moe_experts")
    assert 'data-testid="moe-experts"' not in text(client.get(base.replace("nf4", "bf16")))


def test_quantizing_experts_without_checkpointing_says_why_the_peak_rises(client):
    base = "/?preset=qwen3-30b-a3b&target_modules=q_proj&target_modules=v_proj&base_dtype=nf4"
    note = text(client.get(base)).split('data-testid="moe-experts"')[1].split("</div>")[0]
    assert "The peak rises" in note
    assert "with gradient checkpointing only the recomputed layer does" in note
    link = html.unescape(re.search(r'href="([^"]+)">Quantize the experts with checkpointing', note)[1])
    assert "gradient_checkpointing=true" in link
    assert "quantize_moe_experts=true" in link
    calm = text(client.get(base + "&gradient_checkpointing=true")).split('data-testid="moe-experts"')[1]
    assert "The peak rises" not in calm.split("</div>")[0]


def test_the_recipe_export_panel(client):
    body = text(client.get("/?preset=llama-3.2-3b&framework=axolotl&target_modules=all-linear&base_dtype=nf4"))
    panel = body.split('data-testid="recipe-export"')[1].split("</section>")[0]
    for block in ("export-trl", "export-torchtune", "export-axolotl"):
        assert f'data-copy="#{block}"' in panel
        assert f'id="{block}"' in panel
    trl = html.unescape(panel.split('id="export-trl"><code>')[1].split("</code>")[0])
    assert "SFTConfig(" in trl
    assert 'bnb_4bit_quant_type="nf4"' in trl
    compile(trl, "trl", "exec")  # valid Python
    tune = html.unescape(panel.split('id="export-torchtune"><code>')[1].split("</code>")[0])
    assert tune.startswith("tune run lora_finetune_single_device --config llama3_1/3B_qlora_single_device")
    axolotl = yaml.safe_load(html.unescape(panel.split('id="export-axolotl"><code>')[1].split("</code>")[0]))
    assert axolotl["base_model"] == "meta-llama/Llama-3.2-3B"
    assert axolotl["adapter"] == "qlora"
    assert re.search(r'<details class="export" open><summary>Axolotl', panel)  # the chosen framework's first


def test_a_saved_recipe_reopens_with_the_frameworks_values(client):
    client.get("/")
    state = "preset=llama-3.1-8b&framework=trl&seq_len=4096"
    response = client.post("/save/", {"state": state, "name": "trl", "note": ""})
    assert response.status_code == 302
    saved = SavedConfiguration.objects.get()
    assert saved.inputs["training"]["loss"] == "trl_chunked_nll"
    permalink = text(client.get(response["Location"]))
    assert "framework=trl" in permalink
    assert "seq_len=4096" in permalink
    assert "gradient_checkpointing=true" not in permalink  # TRL's own default, not repeated in the URL
