pragma solidity ^0.7.0;

// Even or odd block numbers decide the flip.
contract CoinFlip {
    receive() external payable {}

    function flip() external payable {
        require(msg.value == 0.01 ether, "stake");
        if (block.number % 2 == 0) { // expect: bad-randomness
            payable(msg.sender).transfer(0.02 ether);
        }
    }
}
