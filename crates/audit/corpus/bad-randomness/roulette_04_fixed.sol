pragma solidity ^0.4.25;

// Bets are settled by an oracle's random number rather than the block.
contract Roulette {
    address public coordinator;
    address public lastBettor;

    constructor(address oracle) public payable {
        coordinator = oracle;
    }

    function () public payable {
        require(msg.value == 10 ether);
        require(lastBettor == address(0));
        lastBettor = msg.sender;
    }

    function settle(uint256 randomness) public {
        require(msg.sender == coordinator);
        address bettor = lastBettor;
        lastBettor = address(0);
        if (randomness % 15 == 0) {
            bettor.transfer(this.balance);
        }
    }
}
