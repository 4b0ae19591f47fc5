pragma solidity ^0.4.18;

// If send fails the prize is marked paid anyway and stays in the contract.
contract Lotto {
    bool public payedOut = false;
    address public winner;
    uint256 public winAmount;

    function Lotto() public {
        winner = msg.sender;
        winAmount = 1 ether;
    }

    function sendToWinner() public {
        require(!payedOut);
        winner.send(winAmount); // expect: unchecked-calls
        payedOut = true;
    }

    function withdrawLeftOver() public {
        require(payedOut);
        require(msg.sender == winner);
        msg.sender.transfer(this.balance);
    }
}
