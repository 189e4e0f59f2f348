"""Demo catalogue for `make run`: a small dark store's products across a few categories."""

CATALOGUE: dict[str, list[tuple[str, str]]] = {
    "mercearia": [
        ("Arroz branco 5 kg", "un"), ("Feijão carioca 1 kg", "un"), ("Açúcar refinado 1 kg", "un"),
        ("Café torrado 500 g", "un"), ("Macarrão espaguete 500 g", "un"), ("Óleo de soja 900 ml", "un"),
        ("Farinha de trigo 1 kg", "un"), ("Sal refinado 1 kg", "un"), ("Molho de tomate 340 g", "un"),
        ("Leite condensado 395 g", "un"), ("Biscoito recheado 140 g", "un"), ("Achocolatado 400 g", "un"),
    ],
    "bebidas": [
        ("Água mineral 500 ml", "un"), ("Refrigerante cola 2 l", "un"), ("Suco de laranja 1 l", "un"),
        ("Cerveja lata 350 ml", "un"), ("Energético 250 ml", "un"), ("Água com gás 500 ml", "un"),
        ("Chá gelado limão 1,5 l", "un"), ("Água de coco 1 l", "un"), ("Refrigerante guaraná 2 l", "un"),
        ("Cerveja long neck 355 ml", "un"),
    ],
    "hortifruti": [
        ("Banana prata", "kg"), ("Tomate", "kg"), ("Cebola", "kg"), ("Batata", "kg"), ("Alface crespa", "un"),
        ("Maçã gala", "kg"), ("Limão tahiti", "kg"), ("Cenoura", "kg"), ("Alho 100 g", "un"), ("Laranja pera", "kg"),
    ],
    "laticinios": [
        ("Leite integral 1 l", "un"), ("Iogurte natural 170 g", "un"), ("Queijo muçarela 150 g", "un"),
        ("Manteiga 200 g", "un"), ("Requeijão 200 g", "un"), ("Creme de leite 200 g", "un"),
        ("Queijo prato 150 g", "un"), ("Leite desnatado 1 l", "un"),
    ],
    "limpeza": [
        ("Detergente 500 ml", "un"), ("Sabão em pó 1 kg", "un"), ("Água sanitária 1 l", "un"),
        ("Esponja dupla face", "un"), ("Desinfetante 500 ml", "un"), ("Papel higiênico 12 rolos", "pct"),
        ("Amaciante 2 l", "un"), ("Saco de lixo 50 l", "pct"),
    ],
    "padaria": [
        ("Pão francês", "kg"), ("Pão de forma", "un"), ("Bolo de cenoura", "un"), ("Pão de queijo 400 g", "un"),
        ("Torrada integral", "un"),
    ],
}
